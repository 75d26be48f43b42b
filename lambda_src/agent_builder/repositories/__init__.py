"""DynamoDB access: one class per table, plus the launch ledger that spans three."""
