"""What the tabs show, computed from the agent's answers without Qt (tested directly)."""
