#!/usr/bin/env python3
"""Turns a REST search mix (one `/v1/products?...` path a line, as the
`query_mix` example prints them) into the same searches as GraphQL request
bodies, one JSON document a line, for `graphql_mix.lua`.

Each body asks `search` for what the REST answer holds: every product field
REST returns, the total, and both facet lists. `page=N` becomes the cursor
the API hands out for page N (`nextCursor` of page N-1).

    benches/load/graphql_mix.py < mix.txt > graphql.txt
"""
import base64
import json
import sys
from urllib.parse import parse_qsl, urlsplit

QUERY = """query Search($query: String, $category: String, $kind: ProductKind, $priceMin: Int, $priceMax: Int,
  $sort: SortOrder, $first: Int, $after: String) {
  search(query: $query, category: $category, kind: $kind, priceMin: $priceMin, priceMax: $priceMax,
         sort: $sort, first: $first, after: $after) {
    totalCount nextCursor
    items {
      id vendorId title shortDescription description kind categories tags
      pricing { type price { minor currency } interval }
      status stats { downloads ratingCount rating } version createdAt updatedAt
    }
    facets { categories { value count } kinds { value count } }
  }
}"""


def cursor(page, limit):
    return base64.urlsafe_b64encode(f"p{page}:{limit}".encode()).decode().rstrip("=")


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    params = dict(parse_qsl(urlsplit(line).query))
    variables = {}
    if "q" in params:
        variables["query"] = params["q"]
    if "category" in params:
        variables["category"] = params["category"]
    if "kind" in params:
        variables["kind"] = params["kind"].upper()
    if "price_min" in params:
        variables["priceMin"] = int(params["price_min"])
    if "price_max" in params:
        variables["priceMax"] = int(params["price_max"])
    if "sort" in params:
        variables["sort"] = params["sort"].upper()
    limit = int(params.get("limit", 20))
    variables["first"] = limit
    page = int(params.get("page", 1))
    if page > 1:
        variables["after"] = cursor(page, limit)
    print(json.dumps({"query": QUERY, "variables": variables}, separators=(",", ":")))
