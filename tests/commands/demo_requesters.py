"""Requesters matching the demo bundle's users (see commands/demo.py)."""

from commands.access import Requester
from commands.demo import ADMIN_EMAIL

ADMIN = Requester(key="test:admin", email=ADMIN_EMAIL.upper(), display_name="Dana")
STANDARD = Requester(key="test:std", email="super@example.com", display_name="Sam")
VIEWER = Requester(key="test:viewer", email="viewer@example.com", display_name="Lee")
ACME_CONTACT = Requester(key="test:ana", email="ana@acmeconcrete.example", display_name="Ana")
VOLT_CONTACT = Requester(key="test:mara", email="mara@voltelectric.example", display_name="Mara")
STRANGER = Requester(key="test:x", email="nobody@else.example", display_name="X")
