"""The spectree instance: validates requests with the pydantic models in schemas.py and
generates the OpenAPI 3.1 description from the same models and the blueprint's routes."""

import copy

from spectree import Response, SecurityScheme, SpecTree
from spectree.model_adapter.pydantic_adapter import PydanticModelAdapter
from spectree.models import SecuritySchemeData, SecureType
from spectree.plugins.flask_plugin import FlaskPlugin

from portal.api.auth import before_handler
from portal.api.schemas import ErrorBody

ERROR_DESCRIPTIONS = {
    400: "malformed request: invalid JSON, or the token sent more than one way (invalid_request)",
    401: "no token (missing_token) or a bad, expired or deleted token (invalid_token)",
    403: "the token lacks a permission (insufficient_scope); `missing` names it",
    404: "no such resource (or not in this tenant)",
    409: "conflicts with existing data",
    415: "the body is not JSON",
    422: "a field is invalid; `field` names it",
}


class TesseraFlaskPlugin(FlaskPlugin):
    """spectree's Flask plugin, minus its request pass on views that declare no query or
    body model (reads and deletes by path): that pass copies every header and cookie into
    dicts to validate nothing."""

    def request_validation(self, request, query, json, form, headers, cookies):
        if query or json or form or headers or cookies:
            super().request_validation(request, query, json, form, headers, cookies)


class SchemaOnceAdapter(PydanticModelAdapter):
    """spectree's pydantic adapter, making each model's JSON schema once: spectree asks for
    it again at every endpoint that names the model (ErrorBody: all of them), when the views
    are decorated, which is at every start of a worker or a `portal` command."""

    def __init__(self):
        super().__init__()
        self.schemas = {}

    def json_schema(self, model, *, ref_template, mode="validation"):
        key = (model, ref_template, mode)
        if key not in self.schemas:
            self.schemas[key] = super().json_schema(model, ref_template=ref_template, mode=mode)
        return copy.deepcopy(self.schemas[key])


spec = SpecTree(
    "flask",
    backend=TesseraFlaskPlugin,
    model_adapter=SchemaOnceAdapter(),
    mode="strict",
    title="Tessera API",
    version="1",
    description="Token-authenticated JSON API of Tessera: access tokens (master tokens), tenants, "
    "profiles and login sessions. Send the token as `Authorization: Bearer <token>`.",
    openapi_version="3.1.0",
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer"))],
    security={"bearer": []},
    validation_error_status=422,
    validation_error_model=ErrorBody,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda parent, child: child,
    before=before_handler,
)


def responses(status: int, model=None, *errors: int) -> Response:
    """The success response plus 401, 403 and the given error statuses, all as ErrorBody."""
    codes = {f"HTTP_{status}": model}
    for code in sorted({401, 403, *errors}):
        codes[f"HTTP_{code}"] = (ErrorBody, ERROR_DESCRIPTIONS[code])
    return Response(**codes)
