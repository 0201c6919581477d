"""The REST contract as data: which ecmapi operation lives at which REST path, and how.

Derived from the vendor's per-endpoint OpenAPI fragments (assembled in the public repository
api-evangelist/mapp; sources and every disagreement are listed in docs/rest-mapping.md). A
REST wire applies these facts generically; nothing here does I/O or knows HTTP clients::

    route = ROUTES["userGetByEmail"]      # GET user/getByEmail?email=..
    route.method, route.path, route.query, route.body, route.success, route.reply

Paths are relative to the REST base ``https://<host>[/<instance>]/api/rest/v<N>/``. Every
argument name is the SOAP request element's name, and a 2xx body is the value of the SOAP
reply's one element (``route.reply``), so ``call("userGetByEmail", email=..)`` gives
``{"user": {...}}`` on both protocols. Marks in comments: [C] read in the fragments, [I]
inferred from them, [G] a guess (the wire should let a tenant override it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "BEAN_FIELDS",
    "ERROR_BEANS",
    "JSON",
    "NO_BODY_SUCCESS",
    "RESPONSES",
    "ROUTES",
    "UNMAPPED",
    "Body",
    "ErrorBean",
    "ExtraParam",
    "JsonConventions",
    "Query",
    "Route",
    "StatusRule",
    "error_bean",
    "route_for",
]

Method = Literal["GET", "POST", "DELETE"]
Shape = Literal["object", "array", "scalar"]


@dataclass(frozen=True)
class Query:
    """A SOAP request argument sent as a query parameter (``name`` on the wire).

    A repeated argument would be sent as the parameter repeated; no route has one."""

    argument: str
    name: str


@dataclass(frozen=True)
class Body:
    """The one SOAP request argument sent as the JSON body: its value itself (never
    wrapped under the argument's name). ``shape`` is ``object`` for a complex argument
    (Contact, ContactIdentifier, MessageContent...) and ``array`` for a repeated one
    (``[1, 2]``, ``[{"name": .., "value": ..}]``)."""

    argument: str
    shape: Literal["object", "array"]


@dataclass(frozen=True)
class ExtraParam:
    """A query parameter REST has and the SOAP operation does not (e.g. the TLS sender
    profile). ``keyword`` is what a caller passes; ``required`` as the fragment says."""

    name: str
    keyword: str
    required: bool = False


@dataclass(frozen=True)
class Route:
    """One operation on REST.

    ``success`` are the statuses the fragment documents for success; ``reply`` names the
    SOAP reply element whose value the body is (None: no body, the SOAP reply is empty)
    and ``reply_shape`` how that body looks (a JSON object, array or bare scalar)."""

    operation: str
    method: Method
    path: str
    query: tuple[Query, ...] = ()
    body: Body | None = None
    success: tuple[int, ...] = (200,)
    reply: str | None = None
    reply_shape: Shape | None = None
    extra: tuple[ExtraParam, ...] = ()
    note: str = ""


def _q(*arguments: str) -> tuple[Query, ...]:
    """Query parameters named like their SOAP arguments (every route so far)."""
    return tuple(Query(a, a) for a in arguments)


_SENDER_PROFILE = ExtraParam("senderProfileName", "sender_profile")

_ROUTES: tuple[Route, ...] = (
    # ---- async (mapp-async-api-openapi.yml)
    Route("asyncGetPollCount", "GET", "async/getPollCount", _q("topic"),
          reply="polls", reply_shape="scalar"),
    Route("asyncGetSubmitCount", "GET", "async/getSubmitCount", _q("topic"),
          reply="puts", reply_shape="scalar",
          note="[G] the fragment lists no parameter; topic as query by analogy with "
               "getPollCount"),
    Route("asyncPoll", "GET", "async/poll", _q("topic", "limit"),
          reply="results", reply_shape="array"),
    # ---- contact (mapp-contact-api-openapi.yml)
    Route("contactCreate", "POST", "contact/create", body=Body("contact", "object"),
          reply="contact", reply_shape="object"),
    Route("contactDelete", "POST", "contact/delete", body=Body("identifier", "object"),
          note="200 with no body [C], not 204"),
    Route("contactGet", "POST", "contact/get", body=Body("identifier", "object"),
          reply="contact", reply_shape="object"),
    Route("contactUpdate", "POST", "contact/update", _q("identifierType"),
          Body("contact", "object"), reply="contact", reply_shape="object",
          note="a full replace: attributes left out are removed [C]"),
    # ---- content (mapp-content-api-openapi.yml)
    Route("contentDelete", "DELETE", "content/delete", _q("contentId"), success=(204,)),
    Route("contentStore", "POST", "content/store", body=Body("content", "object"),
          reply="contentReference", reply_shape="object",
          note="the fragment's 200 schema says PreparedMessage (a copy slip) [I]"),
    # ---- group (mapp-group-api-openapi.yml)
    Route("groupActivate", "POST", "group/activate", body=Body("groupIds", "array"),
          reply="activatingResults", reply_shape="array",
          note="documents 200 (array) and 204 with an example array [C]"),
    Route("groupArchive", "POST", "group/archive", body=Body("groupIds", "array"),
          reply="archivingResults", reply_shape="array"),
    Route("groupClone", "POST", "group/clone", _q("groupId"), Body("options", "object"),
          reply="group", reply_shape="object"),
    Route("groupFindIdsByAttributes", "POST", "group/findIdsByAttributes",
          body=Body("attributes", "array"), reply="groupIds", reply_shape="array"),
    Route("groupGet", "GET", "group/get", _q("groupId"), reply="group",
          reply_shape="object"),
    Route("groupGetAllGroupSettingsTemplates", "GET", "group/getAllGroupSettingsTemplates",
          reply="groupSettingsTemplates", reply_shape="array"),
    Route("groupGetAttributes", "GET", "group/getAttributes", _q("groupId"),
          reply="attributes", reply_shape="array"),
    Route("groupGetPreparedMessages", "GET", "group/getPreparedMessages", _q("groupId"),
          reply="messageIds", reply_shape="array"),
    Route("groupOverrideGroupSettings", "POST", "group/overrideGroupSettings",
          _q("groupId", "settingsId"), success=(204,)),
    Route("groupSetAttributes", "POST", "group/setAttributes", _q("groupId"),
          Body("attributes", "array"), success=(204,)),
    # ---- landing page (mapp-landing-page-api-openapi.yml)
    Route("landingpageDelete", "DELETE", "landingpage/delete", _q("landingpageId"),
          success=(204,)),
    Route("landingpageDeleteMany", "POST", "landingpage/deleteMany",
          body=Body("landingpageIds", "array"), success=(204,)),
    Route("landingpageGetStatus", "GET", "landingpage/getStatus", _q("landingpageId"),
          reply="status", reply_shape="scalar"),
    # ---- membership (mapp-membership-api-openapi.yml)
    Route("membershipCreate", "GET", "membership/create", _q("userId", "groupId"),
          reply="membership", reply_shape="object",
          note="a write on GET [C]: retry by the read/write table, never by the method"),
    Route("membershipDelete", "DELETE", "membership/delete", _q("userId", "groupId"),
          success=(204,)),
    Route("membershipFindAll", "GET", "membership/findAll", _q("userId"),
          reply="memberships", reply_shape="array"),
    Route("membershipFindAllByEmail", "GET", "membership/findAllByEmail", _q("email"),
          reply="memberships", reply_shape="array"),
    Route("membershipGetAttributes", "GET", "membership/getAttributes",
          _q("userId", "groupId"), reply="attributes", reply_shape="array"),
    Route("membershipGetAttributesByEmail", "GET", "membership/getAttributesByEmail",
          _q("email", "groupId"), reply="attributes", reply_shape="array"),
    Route("membershipReplaceAttributes", "POST", "membership/replaceAttributes",
          _q("userId", "groupId"), Body("attributes", "array"),
          note="200 with no body [C]"),
    Route("membershipSubscribe", "POST", "membership/subscribe",
          _q("userId", "groupId", "subscriptionMode"), success=(204,)),
    Route("membershipSubscribeByEmail", "POST", "membership/subscribeByEmail",
          _q("email", "groupId", "subscriptionMode"), success=(204,)),
    Route("membershipUnsubscribe", "POST", "membership/unsubscribe", _q("userId", "groupId"),
          success=(204,),
          extra=(ExtraParam("unsubscriptionMode", "unsubscriptionMode", required=True),),
          note="REST requires unsubscriptionMode (CONFIRMED_OPT_IN | OPT_IN) [C]; SOAP "
               "has no such argument"),
    Route("membershipUnsubscribeByEmail", "POST", "membership/unsubscribeByEmail",
          _q("email", "groupId"), success=(204,)),
    Route("membershipUpdateAttributes", "POST", "membership/updateAttributes",
          _q("userId", "groupId"), Body("attributes", "array"),
          note="200 with no body [C]"),
    # ---- message (mapp-message-api-openapi.yml)
    Route("messageGetManyUsedPersonalizations", "POST",
          "message/getManyUsedPersonalizations", body=Body("messageIds", "array"),
          reply="callResults", reply_shape="array"),
    Route("messageGetUsedPersonalizations", "GET", "message/getUsedPersonalizations",
          _q("messageId"), reply="attributeNames", reply_shape="array"),
    Route("messageSendSingle", "POST", "message/sendSingle", _q("messageId", "recipientId"),
          Body("additionalContent", "object"), success=(204,), extra=(_SENDER_PROFILE,)),
    Route("messageSendTransactional", "POST", "message/sendTransactional",
          _q("messageId", "externalTransactionFormula", "recipientId"),
          Body("additionalContent", "object"), success=(204,), extra=(_SENDER_PROFILE,)),
    Route("messageValidate", "GET", "message/validate", _q("messageId"),
          reply="validationResult", reply_shape="object"),
    Route("messageValidateList", "POST", "message/validateList",
          body=Body("messageIds", "array"), reply="validationResults", reply_shape="array"),
    Route("messageValidateMany", "POST", "message/validateMany",
          body=Body("messageIds", "array"), reply="validationResults", reply_shape="array",
          note="the example shows methodResult fields (entityId, errorCode, errorMessage); "
               "the WSDL says callResult"),
    # ---- meta (mapp-meta-api-openapi.yml)
    Route("metaActivateAttributeDefinitions", "POST", "meta/activateAttributeDefinitions",
          body=Body("attributeNames", "array"), success=(204,)),
    Route("metaArchiveAttributeDefinitions", "POST", "meta/archiveAttributeDefinitions",
          body=Body("attributeNames", "array"), success=(204,)),
    Route("metaCreateAttributeDefinitions", "POST", "meta/createAttributeDefinitions",
          body=Body("attributeDefinitions", "array"), success=(204,)),
    Route("metaCreateLinkCategories", "POST", "meta/createLinkCategories",
          body=Body("categories", "array"), success=(204,)),
    Route("metaDeleteLinkCategory", "POST", "meta/deleteLinkCategory",
          body=Body("categoryNames", "array"), success=(204,)),
    Route("metaGetAttributeDefinitions", "GET", "meta/getAttributeDefinitions",
          reply="attributeDefinitions", reply_shape="array"),
    Route("metaGetLinkCategories", "GET", "meta/getLinkCategories",
          reply="linkCategories", reply_shape="array"),
    Route("metaMergeAttributeDefinitions", "POST", "meta/mergeAttributeDefinitions",
          body=Body("attributeDefinitions", "array"), reply="mergeResults",
          reply_shape="array"),
    Route("metaUpdateLinkCategory", "POST", "meta/updateLinkCategory",
          body=Body("category", "object"), success=(204,)),
    # ---- system (mapp-system-api-openapi.yml)
    Route("systemGetApiVersion", "GET", "system/getApiVersion", reply="version",
          reply_shape="scalar"),
    Route("systemGetEcmVersion", "GET", "system/getEcmVersion", reply="version",
          reply_shape="scalar"),
    # ---- user (mapp-user-api-openapi.yml)
    Route("userCreate", "POST", "user/create", _q("email", "mobileNumber"),
          Body("attributes", "array"), reply="user", reply_shape="object"),
    Route("userDelete", "DELETE", "user/delete", _q("userId"), success=(204,)),
    Route("userGet", "GET", "user/get", _q("userId"), reply="user", reply_shape="object"),
    Route("userGetByEmail", "GET", "user/getByEmail", _q("email"), reply="user",
          reply_shape="object"),
    Route("userGetByIdentifier", "GET", "user/getByIdentifier", _q("identifier"),
          reply="user", reply_shape="object"),
    Route("userGetProfile", "GET", "user/getProfile", _q("userId"), reply="attributes",
          reply_shape="array"),
    Route("userGetProfileByEmail", "GET", "user/getProfileByEmail", _q("email"),
          reply="attributes", reply_shape="array"),
    Route("userReplaceProfile", "POST", "user/replaceProfile", _q("userId"),
          Body("attributes", "array"), success=(204,)),
    Route("userReplaceProfileByEmail", "POST", "user/replaceProfileByEmail", _q("email"),
          Body("attributes", "array"), success=(204,)),
    Route("userUpdateProfile", "POST", "user/updateProfile", _q("userId"),
          Body("attributes", "array"), success=(204,)),
    Route("userUpdateProfileByEmail", "POST", "user/updateProfileByEmail", _q("email"),
          Body("attributes", "array"), success=(204,)),
)

ROUTES: Mapping[str, Route] = MappingProxyType({r.operation: r for r in _ROUTES})
"""Every SOAP operation that has a REST path, by operation name."""

_BY_PATH: Mapping[tuple[str, str], Route] = MappingProxyType(
    {(r.method, r.path): r for r in _ROUTES})

UNMAPPED: Mapping[str, str] = MappingProxyType({
    "asyncGetRemainingCapacity": "no REST path in the vendor's fragments",
    "asyncListTopics": "no REST path in the vendor's fragments",
    "emailSendMessages": "no REST path in the vendor's fragments",
    "asyncSubmit": "GET async/submit is documented without any parameter or body, so how "
                   "topic and arguments travel is unknown",
})
"""SOAP operations with no usable REST route, and why (for the wire's error message)."""

# A route whose reply is None succeeds on either status with an empty body: the fragments
# document 200 for some (contact/delete, membership/*Attributes) and 204 for the rest. [I]
NO_BODY_SUCCESS: tuple[int, ...] = (200, 204)

# ---------------------------------------------------------------- JSON conventions


@dataclass(frozen=True)
class JsonConventions:
    """How SOAP-shaped data (the plain dicts a wire speaks) is written as JSON, for every
    route alike.

    - ``renames``: JSON member names are the SOAP element names, camelCase and unchanged,
      at every level (contact, contactIdentifier, messageContent, attribute, attachment,
      user, group, membership, callResult, methodResult, attributeDefinition,
      groupSettingsTemplate, the error beans): nothing is renamed. [C, from the examples]
    - ``repeated_as_array``: a repeated element is one JSON array under its name: SOAP
      ``<attributes><name/><value/></attributes>`` twice is ``"attributes": [{"name": ..,
      "value": ..}, {..}]``; a repeated argument sent as the body, or a repeated reply
      element, is the bare array. [C]
    - ``null_is_absent``: JSON null (``"mobileNumber": null`` in a user, ``"propertyName":
      null`` in a bean) reads as the element left out; requests leave members out rather
      than send null [I]. An empty list may come as ``[]``, null or no member.
    - xs:long/int are JSON numbers, xs:boolean true/false, strings strings (so
      callResult.entityKey is ``"1800123820"``). [C for replies]
    - ``bare_scalar``: a scalar reply (a version, a status, a count) is documented as
      ``type: string``/``integer`` under application/json, i.e. ``"0.95"``; whether the
      server quotes it is not shown, so read a bare ``0.95`` too. [G]
    - ``headers``: every request asks for JSON (the service also produces XML [C]) and a
      request with a body declares it; Basic auth as on SOAP.
    """

    renames: tuple[tuple[str, str], ...] = ()  # (SOAP name, JSON name): none
    repeated_as_array: bool = True
    null_is_absent: bool = True
    bare_scalar: bool = True
    headers: tuple[tuple[str, str], ...] = (("Accept", "application/json"),)
    body_headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)


JSON = JsonConventions()

# ---------------------------------------------------------------- error beans


@dataclass(frozen=True)
class ErrorBean:
    """A fault bean as JSON: the SOAP detail element it stands for, the JSON member that
    marks it (the JSON carries no bean name), and its fields in the SOAP order."""

    detail: str
    marker: str | None
    fields: tuple[str, ...]
    codes: frozenset[str] = frozenset()  # when set: only these errorCodes pick this bean


BEAN_FIELDS = ("errorActor", "errorCode", "message")

# Tried in order; the first whose marker is present (and whose codes, if any, include the
# errorCode) names the bean. NoSuchObject and ObjectAlreadyExists share their fields, so
# the errorCode tells them apart. A bean with only the three common fields names no detail
# element (the classifier in errors.py then goes by errorCode alone). [C for fields; the
# JSON forms of ObjectAlreadyExists and Batch are not shown in the fragments: [I]]
ERROR_BEANS: tuple[ErrorBean, ...] = (
    ErrorBean("InvalidParameterException", "parameterName",
              (*BEAN_FIELDS, "parameterName", "propertyName", "value")),
    ErrorBean("UnexpectedErrorException", "errorId", (*BEAN_FIELDS, "errorId")),
    ErrorBean("ObjectAlreadyExistsException", "objectType",
              (*BEAN_FIELDS, "objectType", "propertyName", "propertyValue"),
              frozenset({"OBJECT_ALREADY_EXISTS"})),
    ErrorBean("NoSuchObjectException", "objectType",
              (*BEAN_FIELDS, "objectType", "propertyName", "propertyValue")),
    ErrorBean("BatchException", "index", (*BEAN_FIELDS, "index", "reason")),
)


def error_bean(body: Mapping[str, object]) -> ErrorBean | None:
    """The bean a JSON error body is, by the table above; None for the bare three fields."""
    code = body.get("errorCode")
    for bean in ERROR_BEANS:
        if bean.marker in body and (not bean.codes or code in bean.codes):
            return bean
    return None


@dataclass(frozen=True)
class StatusRule:
    """What a non-success status means on REST, in terms of the SOAP side's errors."""

    status: int
    body: str
    maps_to: str


RESPONSES: tuple[StatusRule, ...] = (
    StatusRule(400, "a JSON error bean (errorActor, errorCode, message, ...) [C]; "
               "sometimes plain text such as 'cannot deserialize value' [C]",
               "the typed fault, exactly as the SOAP fault with the same bean; a 400 "
               "without a bean: HTTPStatusError"),
    StatusRule(401, "none documented (no Authorization header) [C]; body shape [G]",
               "AuthenticationError"),
    StatusRule(403, "none documented (bad credentials or user not of type API/Hybrid) [C]",
               "AuthenticationError"),
    StatusRule(404, "a bean {errorActor: CLIENT, errorCode: INVALID_REQUEST, message: "
               "'Not Found'} [C]: a wrong URL, e.g. a route the tenant's version lacks",
               "HTTPStatusError (as on SOAP), not a fault"),
    StatusRule(406, "bad Accept header [C]", "HTTPStatusError"),
    StatusRule(415, "bad Content-Type header [C]", "HTTPStatusError"),
    StatusRule(417, "account expired [C]", "HTTPStatusError"),
    StatusRule(500, "'Database Access Limit Exceeded' is the throttle (about 10 calls per "
               "second per account) [C]; its body format is not documented [G]: match "
               "errors.THROTTLE_TEXT anywhere in the body, JSON or text",
               "RateLimitedError; any other 500 with a bean: the typed fault; else "
               "HTTPStatusError"),
    StatusRule(502, "proxy page [C via engage-api.md]", "HTTPStatusError (retryable)"),
    StatusRule(503, "proxy page [C via engage-api.md]", "HTTPStatusError (retryable)"),
    StatusRule(504, "proxy page [C via engage-api.md]", "HTTPStatusError (retryable)"),
)


def route_for(method: str, path: str) -> Route | None:
    """The route at ``method path`` (path relative to the REST base), or None."""
    return _BY_PATH.get((method.upper(), path.strip("/")))
