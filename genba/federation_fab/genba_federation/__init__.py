"""Genba's federated app: the components are Genba's installed modules."""
