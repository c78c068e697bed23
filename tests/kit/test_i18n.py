"""Chinese text is set with Chinese punctuation: every zh-CN sentence, message template and
page template is checked for half-width brackets."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import yuyue
from yuyue.kit import i18n
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.templates import DEFAULTS

PACKAGE = Path(yuyue.__file__).parent
CJK = r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]"
# A half-width bracket next to Chinese text, spaces between allowed; placeholders such as
# {name} count as text, since they are filled with it.
HALF_WIDTH_BY_CHINESE = re.compile(rf"(?:{CJK}|\}})\s*[()]|[()]\s*(?:{CJK}|\{{)")


def _load_every_module() -> None:
    """Sentences are registered when their module is imported; some only load with the app."""
    for module in pkgutil.walk_packages([str(PACKAGE)], prefix="yuyue."):
        if not module.name.startswith("yuyue.migrations"):
            importlib.import_module(module.name)


def test_the_check_sees_what_it_looks_for() -> None:
    for bad in ("消息 (1)", "退出登录 (138****8000)", "(东院)", "{campus} ({address})"):
        assert HALF_WIDTH_BY_CHINESE.search(bad), bad
    for good in ("消息（1）", "Sign out (138****8000)", "09:00 (Mon)"):
        assert not HALF_WIDTH_BY_CHINESE.search(good), good


def test_registered_chinese_sentences_use_full_width_brackets() -> None:
    _load_every_module()
    sentences = i18n.catalogue("zh-CN")
    assert len(sentences) > 500  # every context's sentences, not just the first loaded
    wrong = {key: text for key, text in sentences.items() if HALF_WIDTH_BY_CHINESE.search(text)}
    assert wrong == {}


@pytest.mark.parametrize("kind", list(MessageKind), ids=str)
def test_chinese_message_templates_use_full_width_brackets(kind: MessageKind) -> None:
    subject, body = DEFAULTS[(kind, "zh-CN")]
    assert not HALF_WIDTH_BY_CHINESE.search(subject)
    assert not HALF_WIDTH_BY_CHINESE.search(body)


JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)
MARKUP = re.compile(r"<script.*?</script>|<style.*?</style>|<[^>]*>", re.DOTALL)


@pytest.mark.parametrize(
    "template", sorted(PACKAGE.rglob("templates/*.html")), ids=lambda p: p.name
)
def test_page_templates_write_no_brackets_of_their_own(template: Path) -> None:
    """A bracket written in a template shows in both languages, so it is wrong in one of
    them: brackets belong in the translated sentences."""
    text = MARKUP.sub(" ", JINJA.sub(" ", template.read_text("utf-8")))
    assert re.findall(r".{0,20}[()（）].{0,20}", text) == []
