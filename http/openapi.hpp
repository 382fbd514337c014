#pragma once

// The service's OpenAPI 3.1 contract (docs/openapi.yaml), compiled in.

#include <string_view>

namespace ap::http {

/// The text of docs/openapi.yaml as it was when the binary was built; served
/// at `GET /openapi.yaml` and compared with the routing table by the tests, so
/// the document cannot silently fall behind the routes.
std::string_view openapi_document();

} // namespace ap::http
