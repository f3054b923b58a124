"""Schema migrations of invoice-backups (tortoise-orm migrations; applied by `invoice-backups migrate`)."""
