"""Watching accounts: the account book, polling, day baselines and the evaluate-act loop."""
