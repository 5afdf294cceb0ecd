"""Block standards: typed, described fields, secrets masked."""

from typing import get_args

import pytest
from prefect.blocks.core import Block
from pydantic import SecretStr

from blocks import (
    BackendCallback,
    ClaudeCredentials,
    ClovaCsrCredentials,
    ClovaSpeechCredentials,
)

CUSTOM_BLOCKS = [BackendCallback, ClaudeCredentials, ClovaCsrCredentials, ClovaSpeechCredentials]
SECRET_FIELDS = {
    BackendCallback: {"internal_token", "signing_secret"},
    ClaudeCredentials: {"api_key"},
    ClovaCsrCredentials: {"api_key_id", "api_key"},
    ClovaSpeechCredentials: {"secret_key"},
}


@pytest.mark.parametrize("block", CUSTOM_BLOCKS, ids=lambda block: block.__name__)
def test_block_standards(block: type[Block]):
    assert block.get_block_type_slug() == block._block_type_slug
    assert block.get_description(), "the docstring describes the block in the UI"
    assert ".load(" in (block.__doc__ or ""), "the docstring shows how to load it"
    for name, info in block.model_fields.items():
        assert info.title and info.description, f"{block.__name__}.{name} needs title+description"
    secrets = {
        name
        for name, info in block.model_fields.items()
        if info.annotation is SecretStr or SecretStr in get_args(info.annotation)
    }
    assert secrets == SECRET_FIELDS[block]


def test_secrets_are_masked_in_the_block_representation():
    block = ClaudeCredentials(api_key="sk-ant-very-secret")
    assert "sk-ant-very-secret" not in repr(block)
    assert "sk-ant-very-secret" not in block.model_dump_json()
