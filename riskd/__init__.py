"""riskd: a risk guard for MT4/MT5 accounts behind the API2Trade cloud bridge."""

__version__ = "0.1.0"
