"""Create (once) and print the demo accounts: an admin, a reviewer and three annotators."""

from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from demo.services import DemoAccount, demo_accounts_ensure


def demo_accounts_file() -> Path:
    return settings.VAR_DIR / "demo-accounts.json"


def demo_accounts_text(accounts: Iterable[DemoAccount], *, secrets_file: Path) -> str:
    lines = [f"Demo accounts (passwords kept in {secrets_file}):"]
    lines += [f"  {account.role:<10} {account.username:<11} {account.password}" for account in accounts]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Create the demo accounts and project if missing, and print the logins."

    def handle(self, *args, **options) -> None:
        secrets_file = demo_accounts_file()
        accounts = demo_accounts_ensure(secrets_file=secrets_file)
        self.stdout.write(demo_accounts_text(accounts, secrets_file=secrets_file))
