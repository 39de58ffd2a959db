"""Operations: worker heartbeats, health checks and the development launcher."""
