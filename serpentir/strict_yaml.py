"""YAML that refuses a key given twice in one mapping.

Plain YAML keeps the later of two equal keys silently, so a stray or pasted line in a config wins
over (or loses to) the real one without a word. Every config and study file is read through here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import UserError


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names one key twice."""


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings reject a duplicate key, naming the key and both lines."""

    def construct_mapping(self, node, deep=False):
        first_line: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` merges are allowed to repeat keys
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                earlier = first_line.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                break
            if earlier is not None:
                raise DuplicateKeyError(
                    None, None, f"key {key!r} is given twice (first on line {earlier})", key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str, where: str | Path):
    """Parse YAML text; a duplicate key or a syntax error is one UserError line naming `where` and the line."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
        line = f", line {mark.line + 1}" if mark is not None else ""
        if isinstance(e, DuplicateKeyError):
            raise UserError(f"{where}{line}: {problem}") from None
        raise UserError(f"{where}{line}: not valid YAML ({problem})") from None


def load_yaml_file(path: str | Path):
    """The YAML document in `path`, parsed with duplicate keys refused (see load_yaml_text)."""
    return load_yaml_text(Path(path).read_text(), path)
