"""Create (once) and print the demo accounts: an admin, a reviewer and three annotators."""

from django.conf import settings
from django.core.management.base import BaseCommand

from ops.services import demo_accounts_ensure


class Command(BaseCommand):
    help = "Create the demo accounts and project if missing, and print the logins."

    def handle(self, *args, **options) -> None:
        secrets_file = settings.VAR_DIR / "demo-accounts.json"
        accounts = demo_accounts_ensure(secrets_file=secrets_file)
        self.stdout.write(f"Demo accounts (passwords kept in {secrets_file}):")
        for account in accounts:
            self.stdout.write(f"  {account.role:<10} {account.username:<11} {account.password}")
