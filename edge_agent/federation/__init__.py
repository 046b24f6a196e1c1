"""The site's side of the federation: its SuperNode (and, later, the ClientApp and its egress ledger)."""
