"""The agent's local API (FastAPI on loopback) and its typed client.

Import ``edge_agent.service.client`` for the client: it pulls in no web server,
no ONNX Runtime, torch or flwr, so the GUI and the CLI stay light.
"""
