"""Serve adapters. Each is a thin translation to and from the framework-free ``Handler``;
framework packages are imported only by the adapter that needs them."""

from stepline.sdk.serve.asgi import AsgiApp, serve_asgi, serve_fastapi, serve_starlette
from stepline.sdk.serve.aws_lambda import lambda_handler
from stepline.sdk.serve.handler import Handler, Request, Response
from stepline.sdk.serve.wsgi import WsgiApp, serve_flask, serve_wsgi

__all__ = [
    "AsgiApp",
    "Handler",
    "Request",
    "Response",
    "WsgiApp",
    "lambda_handler",
    "serve_asgi",
    "serve_fastapi",
    "serve_flask",
    "serve_starlette",
    "serve_wsgi",
]
