"""One file per tab; each tab is thin and asks its view-model what to show."""
