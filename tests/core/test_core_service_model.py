"""The service model: one neutral description of every operation, SOAP kept in the wire."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import engage_soap
from engage_soap import EngageClient, InvalidInputError, zeep_binding
from engage_soap.service import READ_OPERATIONS, Operation, ServiceModel, is_read
from engage_soap.testing import MockTransport

MODEL = zeep_binding.load_wsdl(None).model
PACKAGE = Path(engage_soap.__file__).parent


def test_the_model_holds_every_operation_with_its_schema_and_faults() -> None:
    assert isinstance(MODEL, ServiceModel) and len(MODEL) == 67
    get = MODEL.operation("contactGet")
    assert isinstance(get, Operation) and get.read and not MODEL["contactCreate"].read
    assert [f.name for f in get.request.fields] == ["identifier"]
    assert [f.name for f in get.reply.fields] == ["contact"]
    assert {"NoSuchObjectException", "InvalidParameterException",
            "UnexpectedErrorException"} <= get.faults
    assert MODEL.describe()["contactGet"]["faults"] == sorted(get.faults)


def test_the_model_shares_the_plans_of_the_soap_binding() -> None:
    loaded = zeep_binding.load_wsdl(None)
    for name, op in MODEL.items():
        assert loaded.operations[name].request is op.request
        assert loaded.operations[name].response is op.reply


def test_read_or_write_is_one_table() -> None:
    import engage_soap.retry as retry

    assert retry.READ_OPERATIONS is READ_OPERATIONS and retry.is_read is is_read
    assert set(MODEL) > READ_OPERATIONS
    assert {name for name, op in MODEL.items() if op.read} == READ_OPERATIONS


def test_an_unknown_operation_is_refused_by_the_model_before_any_request() -> None:
    mock = MockTransport(lambda request: pytest.fail("no request may be sent"))
    client = EngageClient("https://engage.example.com/api/soap/v8/", "u", "p",
                          transport=mock)
    with pytest.raises(InvalidInputError, match="no operation 'contactGot'"):
        client.call("contactGot")
    with pytest.raises(InvalidInputError, match="no operation 'contactGot'"):
        client.request_schema("contactGot")
    assert mock.requests == []
    assert client.operations() == MODEL.describe()


@pytest.mark.parametrize("module", ["client.py", "shapes.py", "service.py", "schema.py"])
def test_soap_specifics_stay_in_the_soap_wire(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    imported = {node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert "envelope" not in imported and "zeep" not in imported
    assert not names & {"soap_action", "request_tag", "response_tag", "operations"}
