"""Which operations the sandbox models, how it answers the others, and the declared faults."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from engage_soap import errors, models
from engage_soap.envelope import ECM_NS as ECM
from engage_soap.resources import bundled_wsdl
from engage_soap.sandbox import (
    ECM_VERSION,
    MODELED_OPERATIONS,
    OPERATIONS,
    THROTTLE_MESSAGE,
    THROTTLE_TEXT,
    SandboxState,
)
from engage_soap.sandbox.state import IDENTITY_FIELDS

WSDL = "http://schemas.xmlsoap.org/wsdl/"
# operation -> declared fault elements (fault message name = element name in this WSDL)
DECLARED_FAULTS = {
    op.get("name"): {f.get("message").split(":")[1] for f in op.iter(f"{{{WSDL}}}fault")}
    for op in etree.parse(str(bundled_wsdl())).getroot().find(f"{{{WSDL}}}portType")}
EXPECTED_MODELED = {
    "systemGetApiVersion", "systemGetEcmVersion",
    "contactGet", "contactCreate", "contactUpdate", "contactDelete",
    "userCreate", "userGet", "userGetByEmail", "userGetByIdentifier", "userGetProfile",
    "userGetProfileByEmail", "userUpdateProfile", "userUpdateProfileByEmail",
    "userReplaceProfile", "userReplaceProfileByEmail", "userDelete",
    "groupGet", "groupGetPreparedMessages",
    "membershipSubscribe", "membershipSubscribeByEmail", "membershipUnsubscribe",
    "membershipUnsubscribeByEmail", "membershipCreate", "membershipDelete",
    "membershipFindAll", "membershipFindAllByEmail", "membershipGetAttributes",
    "membershipGetAttributesByEmail", "membershipUpdateAttributes",
    "membershipReplaceAttributes",
    "messageSendSingle", "messageSendTransactional",
}
UNMODELED = sorted(set(DECLARED_FAULTS) - EXPECTED_MODELED)


def test_the_operation_tables():
    assert set(OPERATIONS) == set(DECLARED_FAULTS)
    assert len(OPERATIONS) == 67
    assert set(MODELED_OPERATIONS) == EXPECTED_MODELED
    assert len(UNMODELED) == 67 - len(EXPECTED_MODELED)
    assert "asyncPoll" in UNMODELED and "messageGetManyUsedPersonalizations" in UNMODELED


def test_system_get_ecm_version(soap):
    reply = soap.call("<ecm:systemGetEcmVersion/>")
    assert reply.payload.tag == f"{{{ECM}}}systemGetEcmVersionResponse"
    assert [(c.tag, c.text) for c in reply.payload] == [("version", ECM_VERSION)]
    assert ECM_VERSION == "8.0.0-sandbox"


# -- operations that are not modeled ------------------------------------------------------

@pytest.mark.parametrize("operation", UNMODELED)
def test_unmodeled_operation_is_a_fault_naming_it(soap, operation):
    response = soap.post(soap.envelope(f"<ecm:{operation}/>"))
    assert response.status_code == 500
    reply = soap.call(f"<ecm:{operation}/>")
    message = f"The sandbox does not model operation {operation!r}."
    assert reply.faultstring == message
    assert reply.faultcode == "S:Server"
    if "UnexpectedErrorException" in DECLARED_FAULTS[operation]:
        assert reply.detail_name == "UnexpectedErrorException"
        assert [name for name, _ in reply.detail] == [
            "errorActor", "errorCode", "message", "errorId"]
        assert reply.fields["errorActor"] == "CLIENT"
        assert reply.fields["errorCode"] == "OPERATION_DISABLED"
        assert reply.fields["message"] == message
        assert reply.fields["errorId"]
    else:  # messageGetManyUsedPersonalizations declares only InvalidParameterException
        assert operation == "messageGetManyUsedPersonalizations"
        assert reply.detail_name is None
    assert soap.sandbox.state.calls[-1].operation == operation
    assert soap.sandbox.state.calls[-1].status == 500


def test_unmodeled_operation_with_a_full_request(soap):
    body = ("<ecm:asyncPoll><topic>t</topic><limit>5</limit></ecm:asyncPoll>")
    reply = soap.call(body)
    assert reply.faultstring == "The sandbox does not model operation 'asyncPoll'."
    assert reply.fields["errorCode"] == "OPERATION_DISABLED"


def test_an_element_that_is_no_operation_is_still_an_invalid_request(soap):
    reply = soap.call("<ecm:asyncFrobnicate/>")
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorCode"] == "INVALID_REQUEST"
    assert reply.faultstring == f"Unknown operation {{{ECM}}}asyncFrobnicate."
    assert soap.sandbox.state.calls[-1].operation is None


# -- faults only of a declared kind -------------------------------------------------------

def test_system_operations_declare_no_fault_so_none_has_detail(soap):
    # systemGetApiVersion declares no fault: a schema error goes out without detail.
    reply = soap.call("<ecm:systemGetApiVersion><junk/></ecm:systemGetApiVersion>")
    assert reply.status == 500
    assert reply.detail_name is None
    assert reply.faultstring.startswith("Invalid request:")
    assert DECLARED_FAULTS["systemGetApiVersion"] == set()


def test_user_delete_declares_no_no_such_object(soap):
    assert "NoSuchObjectException" not in DECLARED_FAULTS["userDelete"]
    assert soap.op("userDelete", ("userId", 1)).payload is not None


def test_schema_faults_carry_the_strict_bean(soap):
    reply = soap.call("<ecm:userGet><userId>x</userId></ecm:userGet>")
    # All six fields present, even those without a value.
    assert [name for name, _ in reply.detail] == [
        "errorActor", "errorCode", "message", "parameterName", "propertyName", "value"]
    missing = soap.call("<ecm:userGet/>")
    assert missing.fields["errorCode"] == "INVALID_REQUEST"
    assert missing.fields["parameterName"] == "" and missing.fields["value"] == ""


# -- messageSendTransactional -------------------------------------------------------------

def _transactional(message_id, formula, recipient_id, content=""):
    return (f"<ecm:messageSendTransactional><messageId>{message_id}</messageId>"
            f"<externalTransactionFormula>{formula}</externalTransactionFormula>"
            f"<recipientId>{recipient_id}</recipientId>"
            f"<additionalContent>{content}</additionalContent></ecm:messageSendTransactional>")


def test_message_send_transactional(soap):
    content = (soap.attributes({"ORDER": "A-1"}, "parameters")
               + "<attachments><name>r.txt</name><contentType>text/plain</contentType>"
               f"<content>{base64.b64encode(b'receipt').decode()}</content></attachments>")
    reply = soap.call(_transactional(23541, "ORDER-${ORDER}", 33458, content))
    assert reply.payload.tag == f"{{{ECM}}}messageSendTransactionalResponse"
    assert len(reply.payload) == 0
    (entry,) = soap.sandbox.state.outbox
    assert (entry.message_id, entry.recipient_id, entry.group_id) == (23541, 33458, 4711)
    assert entry.external_transaction_formula == "ORDER-${ORDER}"
    assert entry.parameter_dict == {"ORDER": "A-1"}
    assert [(a.name, a.content) for a in entry.attachments] == [("r.txt", b"receipt")]
    assert soap.sandbox.state.group_members(23541) == [33458]
    soap.call(soap.send_single(23541, 33457))
    assert soap.sandbox.state.outbox[1].external_transaction_formula is None


def test_message_send_transactional_faults(soap):
    assert soap.call(_transactional(1, "f", 33457)).fields["objectType"] == "Message"
    assert soap.call(_transactional(23541, "f", 1)).fields["objectType"] == "Contact"
    bad = ("<attachments><name>a</name><contentType>x/y</contentType><content>%%</content>"
           "</attachments>")
    assert soap.call(_transactional(23541, "f", 33457, bad)).fields[
        "errorCode"] == "INVALID_PARAMETER"
    no_formula = soap.call("<ecm:messageSendTransactional><messageId>23541</messageId>"
                           "<recipientId>33457</recipientId><additionalContent/>"
                           "</ecm:messageSendTransactional>")
    assert no_formula.fields["errorCode"] == "INVALID_REQUEST"
    assert soap.sandbox.state.outbox == []


# -- shared tables ------------------------------------------------------------------------

def test_throttle_text_is_the_clients():
    assert THROTTLE_MESSAGE is errors.THROTTLE_TEXT
    assert THROTTLE_TEXT is errors.THROTTLE_TEXT


def test_identity_fields_come_from_the_models_table():
    assert [wire for _, wire in IDENTITY_FIELDS] == [
        f.wire for f in models.IDENTIFIERS if f.type is not models.IdentifierType.ID]
    assert dict(IDENTITY_FIELDS) == {"email_address": "emailAddress",
                                     "mobile_number": "mobileNumber",
                                     "application_alias": "applicationAlias",
                                     "identifier": "identifier"}
    state = SandboxState()
    values = {"EMAIL": "ext.ernal@example.com", "EXTERNAL": "CRM-000042", "ID": "33460"}
    for identifier in models.IDENTIFIERS:
        value = values.get(identifier.type.value)
        if value is not None:
            assert state.find_contact(identifier.type.value, value).contact_id == 33460
