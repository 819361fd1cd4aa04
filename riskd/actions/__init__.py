"""What riskd does about verdicts: flatten accounts (``enforcer``) and tell people (``alerts``)."""
