"""Definitions (functions, classes, methods, structs …) found with tree-sitter.

One query per language captures each definition node as `@<kind>` and, where the grammar has a
plain `name` field, its name as `@name`; C and C++ functions find their name by walking down the
`declarator` chain. The container of a definition is the nearest enclosing class-like (or
function) definition; a function whose container is class-like is a method.
Grammars come from the per-language wheels (`tree-sitter-python` …), so nothing is downloaded.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import tree_sitter_c
import tree_sitter_cpp
import tree_sitter_go
import tree_sitter_java
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_rust
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from branchwork.index._store import SymbolRow

_JS_COMMON = """
(function_declaration name: (identifier) @name) @function
(generator_function_declaration name: (identifier) @name) @function
(method_definition name: [(property_identifier) (private_property_identifier)] @name) @method
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])
  @function
"""

_QUERIES: dict[str, str] = {
    "python": """
(class_definition name: (identifier) @name) @class
(function_definition name: (identifier) @name) @function
""",
    "javascript": _JS_COMMON + "(class_declaration name: (identifier) @name) @class",
    "typescript": _JS_COMMON
    + """
(class_declaration name: (type_identifier) @name) @class
(abstract_class_declaration name: (type_identifier) @name) @class
(interface_declaration name: (type_identifier) @name) @interface
(enum_declaration name: (identifier) @name) @enum
(type_alias_declaration name: (type_identifier) @name) @type
(method_signature name: (property_identifier) @name) @method
(abstract_method_signature name: (property_identifier) @name) @method
(public_field_definition name: (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @method
(internal_module name: (identifier) @name) @module
""",
    "go": """
(function_declaration name: (identifier) @name) @function
(method_declaration name: (field_identifier) @name) @method
(type_spec name: (type_identifier) @name) @type
""",
    "rust": """
(function_item name: (identifier) @name) @function
(function_signature_item name: (identifier) @name) @function
(struct_item name: (type_identifier) @name) @struct
(union_item name: (type_identifier) @name) @struct
(enum_item name: (type_identifier) @name) @enum
(trait_item name: (type_identifier) @name) @trait
(type_item name: (type_identifier) @name) @type
(mod_item name: (identifier) @name) @module
(macro_definition name: (identifier) @name) @macro
""",
    "java": """
(class_declaration name: (identifier) @name) @class
(record_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @interface
(annotation_type_declaration name: (identifier) @name) @interface
(enum_declaration name: (identifier) @name) @enum
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @method
""",
    "c": """
(function_definition) @function
(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @enum
(type_definition declarator: (type_identifier) @name) @type
(preproc_function_def name: (identifier) @name) @macro
(preproc_def name: (identifier) @name) @macro
""",
    "cpp": """
(function_definition) @function
(field_declaration declarator: (function_declarator)) @method
(class_specifier name: (type_identifier) @name body: (field_declaration_list)) @class
(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @enum
(namespace_definition name: (namespace_identifier) @name) @module
(type_definition declarator: (type_identifier) @name) @type
(alias_declaration name: (type_identifier) @name) @type
(preproc_function_def name: (identifier) @name) @macro
""",
}
_QUERIES["tsx"] = _QUERIES["typescript"]

_CLASS_LIKE = frozenset({
    "class_definition", "class_declaration", "abstract_class_declaration", "class",
    "interface_declaration", "enum_declaration", "record_declaration", "internal_module",
    "impl_item", "trait_item", "mod_item", "class_specifier", "struct_specifier",
    "namespace_definition",
})  # fmt: skip
_MODULE_LIKE = frozenset({"mod_item", "internal_module", "namespace_definition"})
_FUNCTION_LIKE = frozenset({
    "function_definition", "function_declaration", "method_definition", "function_item",
    "method_declaration", "constructor_declaration", "generator_function_declaration",
})  # fmt: skip
_DECLARATOR_NAMES = frozenset({
    "identifier", "field_identifier", "destructor_name", "operator_name", "type_identifier",
})  # fmt: skip
_GRAMMARS: dict[str, Any] = {
    "python": tree_sitter_python,
    "javascript": tree_sitter_javascript,
    "go": tree_sitter_go,
    "rust": tree_sitter_rust,
    "java": tree_sitter_java,
    "c": tree_sitter_c,
    "cpp": tree_sitter_cpp,
}
_GO_TYPE_KINDS = {"struct_type": "struct", "interface_type": "interface"}


def _load_language(language: str) -> Any:
    if language == "tsx":
        return tree_sitter_typescript.language_tsx()
    if language == "typescript":
        return tree_sitter_typescript.language_typescript()
    return _GRAMMARS[language].language()


@cache
def _tools(language: str) -> tuple[Parser, Query]:
    lang = Language(_load_language(language))
    return Parser(lang), Query(lang, _QUERIES[language])


def has_grammar(language: str | None) -> bool:
    return language in _QUERIES


def extract_symbols(data: bytes, language: str) -> list[SymbolRow]:
    """The definitions in `data` (source bytes) written in `language`, in source order."""
    parser, query = _tools(language)
    tree = parser.parse(data)
    rows: list[SymbolRow] = []
    for _, captures in QueryCursor(query).matches(tree.root_node):
        row = _row_from_match(captures)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: (r.start_line, r.name_line))
    return rows


def _row_from_match(captures: dict[str, list[Node]]) -> SymbolRow | None:
    kind = next((k for k in captures if k != "name"), None)
    if kind is None:
        return None
    node = captures[kind][0]
    names = captures.get("name")
    name_node, scope = (names[0], None) if names else _declarator_name(node)
    if name_node is None or not name_node.text:
        return None
    container = scope or _container_of(node)
    return SymbolRow(
        name=name_node.text.decode("utf-8", errors="replace"),
        kind=_refine_kind(kind, node, container, qualified=scope is not None),
        start_line=node.start_point[0] + 1,
        end_line=_end_line(node),
        name_line=name_node.start_point[0] + 1,
        container=container,
    )


def _end_line(node: Node) -> int:
    row, column = node.end_point
    # A node ending at column 0 ends with the newline of the line before (preprocessor lines).
    return row if column == 0 and row > node.start_point[0] else row + 1


def _refine_kind(kind: str, node: Node, container: str | None, *, qualified: bool) -> str:
    if node.type == "type_spec":
        type_node = node.child_by_field_name("type")
        return _GO_TYPE_KINDS.get(type_node.type if type_node else "", "type")
    if kind != "function" or container is None:
        return kind
    if qualified:  # C++ `int Foo::bar() {…}`
        return "method"
    parent = _enclosing(node)
    is_method = parent is not None and parent.type in _CLASS_LIKE - _MODULE_LIKE
    return "method" if is_method else kind


def _declarator_name(node: Node) -> tuple[Node | None, str | None]:
    """The name node of a C/C++ declarator chain, and its scope if it is qualified."""
    current = node.child_by_field_name("declarator")
    scopes: list[str] = []
    while current is not None and current.type not in _DECLARATOR_NAMES:
        if current.type == "qualified_identifier":
            scope = current.child_by_field_name("scope")
            if scope is not None and scope.text:
                scopes.append(scope.text.decode("utf-8", errors="replace"))
            current = current.child_by_field_name("name")
        elif current.type == "template_function":
            current = current.child_by_field_name("name")
        else:
            current = current.child_by_field_name("declarator")
    # The nearest scope only, as for every other container: `A::B::f` is `f` in `B`.
    return current, (scopes[-1].split("<")[0] if scopes else None)


def _enclosing(node: Node) -> Node | None:
    parent = node.parent
    while parent is not None:
        if parent.type in _CLASS_LIKE or parent.type in _FUNCTION_LIKE:
            return parent
        parent = parent.parent
    return None


def _container_of(node: Node) -> str | None:
    parent = _enclosing(node)
    if node.type == "method_declaration" and node.child_by_field_name("receiver") is not None:
        return _go_receiver(node)
    if parent is None:
        return None
    return _node_name(parent)


def _node_name(node: Node) -> str | None:
    if node.type == "impl_item":
        target = node.child_by_field_name("type")
        if target is not None and target.type == "generic_type":
            target = target.child_by_field_name("type")
        name_node = target
    else:
        name_node = node.child_by_field_name("name")
        if name_node is None and node.child_by_field_name("declarator") is not None:
            name_node = _declarator_name(node)[0]
    if name_node is None or not name_node.text:
        return None
    return name_node.text.decode("utf-8", errors="replace")


def _go_receiver(node: Node) -> str | None:
    receiver = node.child_by_field_name("receiver")
    text = receiver.text.decode("utf-8", errors="replace") if receiver and receiver.text else ""
    # "(s *Server[T])" -> "Server"
    inner = text.strip("()").split()[-1] if text.strip("()").split() else ""
    return inner.lstrip("*").split("[")[0] or None
