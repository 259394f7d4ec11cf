"""Declarative mappings: from a syntax's XML to the canonical piece.

One TOML file per syntax (mappings/*.toml) says which root elements it
applies to and, for each canonical field, XPath expressions tried in order
(the first one giving a non-empty value wins) and a type. Adding a syntax
is adding a file: nothing here knows UBL or CII.

XPaths are compiled once when a mapping is loaded, and loaded mappings are
cached per process, since this runs on every piece. Most expressions are plain
child paths (cac:Item/cbc:Name, /*/cbc:ID/@schemeID): those are answered without
XPath, by one walk per context node that finds them all (an XPath call costs
more than reading the field); anything else is evaluated by XPath.

- `loader`: reading and compiling the files, choosing a document's mapping
  (`load_mappings`, `select_mapping`, `mapping_source`);
- `fastpath`: the plain child paths and their walk (tries of tags);
- `builder`: typed values, the cadre, and the canonical `Invoice` they make;
- `read`: `map_piece`, the entry, reading one document through its mapping.
"""
