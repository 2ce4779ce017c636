"""Stage 1: `.eq` text → syntax tree (Lark grammar, indentation, located syntax errors; `extends` merged)."""

from .compose import compose as compose
from .parse import BLOCK_KEYWORDS as BLOCK_KEYWORDS
from .parse import description_of as description_of
from .parse import parse as parse
from .source import read_file as read_file
from .source import read_source as read_source
