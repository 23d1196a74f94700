"""gRPC edge of the sidecar: translates protobuf <-> the engine's model and owns nothing else.

The server itself is `sidecar.server.app.SidecarServer`; services are registered in app.py.
"""
