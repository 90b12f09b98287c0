"""The template as SAM makes it: the CloudFormation that is deployed, for tests that must hold
on what AWS receives rather than on what we wrote."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from devtools import template

Translated = dict[str, Any]


class _NoManagedPolicies:
    """The functions' policies are inline: SAM must never need AWS's managed policy list."""

    def load(self) -> dict[str, str]:
        raise AssertionError("the template names a managed policy")


@cache
def _translate(parameters: frozenset[tuple[str, str]]) -> Translated:
    from samcli.lib.translate.sam_template_validator import SamTemplateValidator
    from samcli.yamlhelper import yaml_parse

    source = yaml_parse(template.TEMPLATE.read_text(encoding="utf-8"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SAM_CLI_TELEMETRY", "0")  # SAM CLI's usage reporting: nothing leaves
        validator = SamTemplateValidator(
            copy.deepcopy(source),
            _NoManagedPolicies(),
            parameter_overrides=dict(parameters),
            language_extensions_enabled=True,
        )
        translated: Translated = yaml_parse(validator.get_translated_template_if_valid())
        return translated


def translate(parameters: dict[str, str]) -> Translated:
    """The CloudFormation template SAM makes of ours with these parameter values: SAM CLI's
    own path (its local AWS::LanguageExtensions expansion, Fn::ForEach included, then the
    SAM translator). Do not change the result: it is shared."""
    return _translate(frozenset(parameters.items()))


@pytest.fixture(scope="session")
def translated() -> Translated:
    """With the parameters' defaults."""
    return translate({})


@pytest.fixture(scope="session")
def sam_translate() -> Callable[[dict[str, str]], Translated]:
    return translate
