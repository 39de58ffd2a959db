"""Input parsing with the limits Quorum holds every body to: JSON nested at most
`boxes.formats.MAX_JSON_DEPTH` levels, refused with a 400 before it is parsed."""

import codecs

from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings
from rest_framework.utils import json

from boxes.formats import MAX_JSON_DEPTH, JsonTooDeep, json_depth, json_parse


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing a body nested deeper than `MAX_JSON_DEPTH` (400) before
    parsing it, where Python's parser would run out of stack (a RecursionError, a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        raw = stream.read() if stream is not None else b""
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError) as error:
            raise ParseError(f"JSON parse error - {error}") from error
        depth = json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise ParseError(f"The JSON body nests {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted.")
        try:
            parse_constant = json.strict_constant if api_settings.STRICT_JSON else None
            return json.loads(text, parse_constant=parse_constant)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error


class BoundedJSONField(serializers.JSONField):
    """A JSON field whose text form (a multipart or form field) is held to the same depth."""

    default_error_messages = {"too_deep": "Nested more than {depth} levels deep."}

    def to_internal_value(self, data):
        if self.binary or getattr(data, "is_json_string", False):
            if isinstance(data, bytes):
                try:
                    data = data.decode()
                except UnicodeDecodeError:
                    self.fail("invalid")
            try:
                return json_parse(data, max_depth=MAX_JSON_DEPTH)
            except JsonTooDeep:
                self.fail("too_deep", depth=MAX_JSON_DEPTH)
            except ValueError:
                self.fail("invalid")
        return super().to_internal_value(data)
