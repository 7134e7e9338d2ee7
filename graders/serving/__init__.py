"""judgeforge.graders.serving: the HTTP scoring API for a judge (``judgeforge serve``).

    from judgeforge.graders.serving.app import create_app
    from judgeforge.graders.serving.settings import ServiceSettings
    app = create_app(ServiceSettings(api_key="..."), model)   # a FastAPI app

Importing this package does not import FastAPI or uvicorn (``app`` and ``server`` do; they need
the ``api`` or ``serve`` extra).
"""

__all__: list[str] = []  # a namespace of modules: import them by name
