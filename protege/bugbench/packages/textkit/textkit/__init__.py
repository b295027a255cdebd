"""textkit: small text utilities for case conversion, wrapping, distances and tokens."""

from textkit.case import (
    slugify,
    split_identifier,
    to_camel,
    to_kebab,
    to_pascal,
    to_snake,
    to_title,
)
from textkit.distance import (
    closest,
    common_prefix,
    common_suffix,
    hamming,
    jaccard,
    lcs_length,
    lcs_ratio,
    levenshtein,
    longest_common_subsequence,
    similarity,
)
from textkit.tokens import (
    average_word_length,
    char_ngrams,
    most_common,
    ngrams,
    sentences,
    word_count,
    word_frequencies,
    words,
)
from textkit.wrap import dedent, fill, indent, justify, truncate, truncate_words, wrap
