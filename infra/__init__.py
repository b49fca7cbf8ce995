"""The AWS stack (CDK): one construct per concern, composed by ``infra.stack.SteplineStack``.

CDK only; the runtime never imports this package. ``app.py`` at the top builds the app with
``infra.app.build_app``.
"""
