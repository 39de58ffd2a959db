"""Django's Redis cache, keeping one redis-py client per connection pool.

Django's `RedisCacheClient.get_client` builds a new `redis.Redis` for every cache call;
building one fills its table of response callbacks, about 0.3 ms on this machine, so a
prediction's six cache calls (state token, throttle lock and window) paid 2 ms for clients
alone. A client is a thin object over its pool and safe to share between threads (and
Django keeps one cache backend per thread anyway); after a fork, the pool it holds resets
its connections itself.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ReusedClientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
