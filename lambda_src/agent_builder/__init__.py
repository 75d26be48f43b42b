"""agent-builder control-plane domain: plain Python, boto3 clients passed in.

Nothing here imports a boto3 service model or pydantic at import time, so a cold start
pays only for what the invocation uses.
"""
