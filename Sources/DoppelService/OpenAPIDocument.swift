// SPDX-License-Identifier: MIT

/// The OpenAPI 3.1 description of every route, served at `/openapi.json`. Kept beside the
/// routes by hand; the end-to-end tests validate responses against it.
enum OpenAPIDocument {
    static func json(maxK: Int, maxThreshold: Float, maxImages: Int, maxFaces: Int) -> String {
        // Ids and gallery names: no control characters, no / or \ (ECMA-262 pattern).
        let identifier = #""pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f/\\\\]+$""#
        let threshold = #""type": "number", "minimum": 0.000001, "maximum": \#(maxThreshold)"#
        return #"""
        {
          "openapi": "3.1.0",
          "info": {
            "title": "Doppel",
            "version": "0.1.0",
            "description": "Verify (are these two images the same identity?) and search (which enrolled identities does this image look like?) with a Siamese embedder, and enroll identities one-shot. Images are accepted as multipart/form-data files, JSON base64 strings, or a raw body (image/* or application/octet-stream) where one image is expected."
          },
          "servers": [{"url": "http://127.0.0.1:8080"}],
          "components": {
            "securitySchemes": {
              "adminKey": {"type": "http", "scheme": "bearer", "description": "The admin key (config keys.admin, DOPPEL_ADMIN_KEYS, or the generated data/admin.key)."},
              "clientKey": {"type": "http", "scheme": "bearer", "description": "A client key, needed only when keys.client is configured; an admin key works too."}
            },
            "parameters": {
              "gallery": {"name": "gallery", "in": "query", "required": false, "description": "Gallery (collection) name; default `default`.", "schema": {"type": "string", "minLength": 1, "maxLength": 64, \#(identifier)}},
              "threshold": {"name": "threshold", "in": "query", "required": false, "description": "Override of the model's calibrated threshold, in [1e-6, bound].", "schema": {\#(threshold)}},
              "id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 128, \#(identifier)}}
            },
            "schemas": {
              "Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"],
                  "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Warning"}}}}}
              },
              "Warning": {
                "type": "object", "required": ["code", "image", "message"],
                "properties": {"code": {"type": "string", "enum": ["closer_to_other_identity", "outside_spread"]}, "image": {"type": "integer"},
                  "identity": {"type": "string"}, "distance": {"type": "number"}, "own_distance": {"type": ["number", "null"]}, "threshold": {"type": "number"}, "message": {"type": "string"}}
              },
              "ImagePair": {"type": "object", "required": ["image1", "image2"], "additionalProperties": false, "properties": {"image1": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}, "image2": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}, "threshold": {\#(threshold)}, "face1": {"$ref": "#/components/schemas/FaceSelector"}, "face2": {"$ref": "#/components/schemas/FaceSelector"}}},
              "ImagePairForm": {"type": "object", "required": ["image1", "image2"], "additionalProperties": false, "properties": {"image1": {"type": "string", "format": "binary"}, "image2": {"type": "string", "format": "binary"}, "threshold": {\#(threshold)}, "face1": {"$ref": "#/components/schemas/FaceSelector"}, "face2": {"$ref": "#/components/schemas/FaceSelector"}}},
              "ImageOnly": {"type": "object", "required": ["image"], "additionalProperties": false, "properties": {"image": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}, "face": {"$ref": "#/components/schemas/FaceSelector"}, "max_faces": {"type": "integer", "minimum": 1, "maximum": \#(maxFaces)}, "landmarks": {"type": "boolean"}}},
              "ImageOnlyForm": {"type": "object", "required": ["image"], "additionalProperties": false, "properties": {"image": {"type": "string", "format": "binary"}, "face": {"$ref": "#/components/schemas/FaceSelector"}, "max_faces": {"type": "integer", "minimum": 1, "maximum": \#(maxFaces)}, "landmarks": {"type": "boolean"}}},
              "IdentityImage": {"type": "object", "required": ["image"], "additionalProperties": false, "properties": {"image": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}, "threshold": {\#(threshold)}, "gallery": {"type": "string", "minLength": 1, "maxLength": 64, \#(identifier)}, "face": {"$ref": "#/components/schemas/FaceSelector"}}},
              "IdentityImageForm": {"type": "object", "required": ["image"], "additionalProperties": false, "properties": {"image": {"type": "string", "format": "binary"}, "threshold": {\#(threshold)}, "gallery": {"type": "string", "minLength": 1, "maxLength": 64, \#(identifier)}, "face": {"$ref": "#/components/schemas/FaceSelector"}}},
              "OneImage": {"type": "object", "required": ["image"], "additionalProperties": false, "properties": {"image": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}, "k": {"type": "integer", "minimum": 1, "maximum": \#(maxK)}, "threshold": {\#(threshold)}, "gallery": {"type": "string", "minLength": 1, "maxLength": 64, \#(identifier)}, "face": {"$ref": "#/components/schemas/FaceSelector"}, "max_faces": {"type": "integer", "minimum": 1, "maximum": \#(maxFaces)}, "landmarks": {"type": "boolean"}}},
              "OneImageForm": {"type": "object", "required": ["image"], "additionalProperties": false, "properties": {"image": {"type": "string", "format": "binary"}, "k": {"type": "integer", "minimum": 1, "maximum": \#(maxK)}, "threshold": {\#(threshold)}, "gallery": {"type": "string", "minLength": 1, "maxLength": 64, \#(identifier)}, "face": {"$ref": "#/components/schemas/FaceSelector"}, "max_faces": {"type": "integer", "minimum": 1, "maximum": \#(maxFaces)}, "landmarks": {"type": "boolean"}}},
              "NewIdentity": {"type": "object", "required": ["id", "images"], "additionalProperties": false, "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 128, \#(identifier)}, "name": {"type": "string", "maxLength": 256}, "metadata": {"type": "object"}, "strict": {"type": "boolean"}, "gallery": {"type": "string", "minLength": 1, "maxLength": 64, \#(identifier)}, "images": {"type": "array", "minItems": 1, "maxItems": \#(maxImages), "items": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}}, "face": {"type": "string", "enum": ["single", "largest"], "description": "models with a face stage: single (default) refuses an image with no face or several; largest takes the largest"}}},
              "NewIdentityForm": {"type": "object", "required": ["id", "images"], "additionalProperties": false, "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 128, \#(identifier)}, "name": {"type": "string", "maxLength": 256}, "metadata": {"type": "string", "description": "a JSON object as text"}, "strict": {"type": "boolean"}, "images": {"type": "array", "minItems": 1, "maxItems": \#(maxImages), "items": {"type": "string", "format": "binary"}}, "face": {"type": "string", "enum": ["single", "largest"], "description": "models with a face stage: single (default) refuses an image with no face or several; largest takes the largest"}}},
              "NewSamples": {"type": "object", "required": ["images"], "additionalProperties": false, "properties": {"images": {"type": "array", "minItems": 1, "maxItems": \#(maxImages), "items": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}}, "strict": {"type": "boolean"}, "gallery": {"type": "string", "minLength": 1, "maxLength": 64, \#(identifier)}, "face": {"type": "string", "enum": ["single", "largest"], "description": "models with a face stage: single (default) refuses an image with no face or several; largest takes the largest"}}},
              "NewSamplesForm": {"type": "object", "required": ["images"], "additionalProperties": false, "properties": {"images": {"type": "array", "minItems": 1, "maxItems": \#(maxImages), "items": {"type": "string", "format": "binary"}}, "strict": {"type": "boolean"}, "face": {"type": "string", "enum": ["single", "largest"], "description": "models with a face stage: single (default) refuses an image with no face or several; largest takes the largest"}}},
              "FaceSelector": {"description": "models with a face stage only: largest, a face's number among those found (0 the largest), or a box (left,top,right,bottom as text, [l, t, r, b] or an object) that skips detection",
                "type": ["string", "integer", "array", "object"]},
              "Box": {"type": "object", "required": ["left", "top", "right", "bottom"], "description": "in pixels, edges included, cut to the image", "properties": {"left": {"type": "integer"}, "top": {"type": "integer"}, "right": {"type": "integer"}, "bottom": {"type": "integer"}}},
              "FoundFace": {"type": "object", "required": ["face", "box", "confidence"],
                "properties": {"face": {"type": "integer", "minimum": 0, "description": "its number among the faces found, largest first"}, "box": {"$ref": "#/components/schemas/Box"},
                  "confidence": {"type": ["number", "null"], "description": "the detector's score (above its threshold, 0); null for a box the caller gave"},
                  "landmarks": {"type": "array", "description": "with landmarks=true: five [x, y] points, the eyes' outer and inner corners and the nose", "items": {"type": "array", "items": {"type": "number"}}}}},
              "ImageFaces": {"type": "object", "required": ["image", "found", "used", "faces"],
                "properties": {"image": {"type": "string", "description": "the image's field"}, "found": {"type": "integer", "minimum": 1, "description": "faces found in it"},
                  "used": {"type": "integer", "minimum": 0, "description": "the face compared or stored"}, "faces": {"type": "array", "maxItems": \#(maxFaces), "description": "the first max_faces found, largest first", "items": {"$ref": "#/components/schemas/FoundFace"}}}},
              "Decision": {
                "type": "object", "required": ["distance", "threshold", "match", "similarity", "far", "model"],
                "properties": {"distance": {"type": "number"}, "threshold": {"type": "number"}, "match": {"type": "boolean"},
                  "similarity": {"type": "number", "minimum": 0, "maximum": 1}, "far": {"type": ["number", "null"], "description": "estimated false accept rate of one comparison at this threshold"}, "model": {"type": "string"},
                  "images": {"type": "array", "description": "models with a face stage only: per image, the faces found and the one used", "items": {"$ref": "#/components/schemas/ImageFaces"}}}
              },
              "IdentityDecision": {
                "type": "object", "required": ["identity", "threshold", "match", "model"],
                "description": "distance, similarity, far and sample are given to client and admin keys; a compare-only caller gets match alone",
                "properties": {"identity": {"type": "string"}, "distance": {"type": "number"}, "threshold": {"type": "number"}, "match": {"type": "boolean"},
                  "similarity": {"type": "number"}, "far": {"type": ["number", "null"]}, "sample": {"type": "integer"}, "model": {"type": "string"}, "images": {"type": "array", "description": "models with a face stage only: per image, the faces found and the one used", "items": {"$ref": "#/components/schemas/ImageFaces"}}}
              },
              "SearchResult": {
                "type": "object", "required": ["decision", "margin", "far", "matches", "gallery", "model", "threshold"],
                "properties": {"decision": {"type": "string", "enum": ["match", "unknown", "ambiguous"]}, "margin": {"type": "number"}, "far": {"type": ["number", "null"]},
                  "matches": {"type": "array", "maxItems": \#(maxK), "items": {"type": "object", "required": ["identity", "distance", "similarity", "match", "sample"],
                    "properties": {"identity": {"type": "string"}, "distance": {"type": "number"}, "similarity": {"type": "number"}, "match": {"type": "boolean"}, "sample": {"type": "integer"}}}},
                  "gallery": {"type": "string"}, "model": {"type": "string"}, "threshold": {"type": "number"}, "faces_found": {"type": "integer", "minimum": 1}, "max_faces": {"type": "integer"}, "faces_truncated": {"type": "boolean", "description": "more faces were found than max_faces; the largest are answered"}, "faces": {"type": "array", "maxItems": \#(maxFaces), "description": "models with a face stage only: each face answered, largest first; the top-level fields are the first one's", "items": {"allOf": [{"$ref": "#/components/schemas/FoundFace"}, {"type": "object", "required": ["decision", "matches"], "properties": {"decision": {"type": "string", "enum": ["match", "unknown", "ambiguous"]}, "matches": {"type": "array"}}}]}}}
              },
              "Embedding": {"type": "object", "required": ["embedding", "dimension", "model"], "properties": {"embedding": {"type": "array", "items": {"type": "number"}}, "dimension": {"type": "integer"}, "model": {"type": "string"}, "faces_found": {"type": "integer", "minimum": 1}, "max_faces": {"type": "integer"}, "faces_truncated": {"type": "boolean", "description": "more faces were found than max_faces; the largest are answered"}, "faces": {"type": "array", "maxItems": \#(maxFaces), "description": "models with a face stage only: each face's embedding, largest first; the top-level embedding is the first one's", "items": {"allOf": [{"$ref": "#/components/schemas/FoundFace"}, {"type": "object", "required": ["embedding"], "properties": {"embedding": {"type": "array", "items": {"type": "number"}}}}]}}}},
              "Enrolled": {"type": "object", "required": ["id", "gallery", "samples", "warnings", "model"],
                "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]}, "gallery": {"type": "string"}, "samples": {"type": "array", "items": {"type": "integer"}},
                  "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Warning"}}, "model": {"type": "string"}, "images": {"type": "array", "description": "models with a face stage only: per image, the faces found and the one used", "items": {"$ref": "#/components/schemas/ImageFaces"}}}},
              "IdentityList": {"type": "object", "required": ["identities", "next", "gallery"],
                "properties": {"identities": {"type": "array", "items": {"type": "object", "required": ["id", "name", "samples", "first_sample"], "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]}, "samples": {"type": "integer"}, "first_sample": {"type": ["integer", "null"], "description": "the id of its first sample, for a thumbnail"}}}},
                  "next": {"type": ["string", "null"], "description": "pass as `after` for the next page"}, "gallery": {"type": "string"}}},
              "Identity": {"type": "object", "required": ["id", "name", "gallery", "metadata", "samples", "spread"],
                "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]}, "gallery": {"type": "string"}, "metadata": {"type": "object"},
                  "created_at": {"type": ["string", "null"]}, "updated_at": {"type": ["string", "null"]},
                  "samples": {"type": "array", "items": {"type": "object", "required": ["id", "sha256", "width", "height"], "properties": {"id": {"type": "integer"}, "sha256": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"}}}},
                  "spread": {"type": "object", "required": ["samples", "mean_distance_to_centroid", "max_pairwise_distance"], "properties": {"samples": {"type": "integer"}, "mean_distance_to_centroid": {"type": ["number", "null"]}, "max_pairwise_distance": {"type": ["number", "null"]}}}}},
              "Deleted": {"type": "object", "required": ["deleted", "gallery"], "properties": {"deleted": {"type": ["string", "integer"]}, "id": {"type": "string"}, "gallery": {"type": "string"}, "samples": {"type": "integer"}}},
              "Model": {"type": "object", "required": ["id", "architecture", "metric", "embedding_dim", "threshold"],
                "properties": {"id": {"type": "string"}, "architecture": {"type": "string"}, "objective": {"type": "string"}, "metric": {"type": "string", "enum": ["euclidean", "cosine"]},
                  "embedding_dim": {"type": "integer"}, "input_spec": {"type": ["object", "null"]}, "threshold": {"type": "number"}, "threshold_method": {"type": ["string", "null"]},
                  "calibration": {"type": ["object", "null"]}, "recipe": {"type": ["object", "null"]}}}
            },
            "responses": {
              "BadRequest": {"description": "malformed input (invalid_image, invalid_base64, invalid_json, missing_image, invalid_k, invalid_threshold, ...)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unauthorized": {"description": "no key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Forbidden": {"description": "wrong key", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "NotFound": {"description": "unknown identity or sample", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Conflict": {"description": "id taken, or the same image already enrolled", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "TooLarge": {"description": "body or image pixels over the limit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unsupported": {"description": "unsupported Content-Type", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unprocessable": {"description": "a model with a face stage: no_face (no face in an image, named in the message), multiple_faces (enrollment takes one face per image), no_such_face (face1/face2/face names a face not found), box_outside_image; enrollment_quality: strict enrollment refused, warnings inside the error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unavailable": {"description": "not ready (indexing) or storage cannot take writes", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Internal": {"description": "an internal error (details in the server log only)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
          },
          "paths": {
            "/healthz": {"get": {"summary": "Alive", "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "alive", "content": {"application/json": {"schema": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}}}}}}},
            "/readyz": {"get": {"summary": "Model loaded and gallery indexed", "responses": {"500": {"$ref": "#/components/responses/Internal"}, 
              "200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object", "required": ["status", "model", "samples", "index"], "properties": {"status": {"const": "ready"}, "model": {"type": "string"}, "samples": {"type": "integer"}, "index": {"type": "object", "required": ["precision", "bytes_per_vector", "bytes"], "properties": {"precision": {"enum": ["float32", "float16", "int8"]}, "bytes_per_vector": {"type": "integer"}, "bytes": {"type": "integer"}}}, "replication": {"type": "object", "required": ["applied", "lag_ms", "change_log"], "properties": {"applied": {"type": "integer"}, "lag_ms": {"type": "integer"}, "change_log": {"enum": ["reachable", "unreachable"]}}}}}}}},
              "503": {"$ref": "#/components/responses/Unavailable"}}}},
            "/metrics": {"get": {"summary": "Prometheus text format", "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/v1/model": {"get": {"summary": "The served model's metadata", "security": [{}, {"clientKey": []}], "responses": {"500": {"$ref": "#/components/responses/Internal"}, 
              "200": {"description": "model", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Model"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
            "/v1/verify": {"post": {"summary": "Are these two images the same identity?", "security": [{}, {"clientKey": []}],
              "parameters": [{"$ref": "#/components/parameters/threshold"}],
              "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/ImagePairForm"}}, "application/json": {"schema": {"$ref": "#/components/schemas/ImagePair"}}}},
              "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "decision", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Decision"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "422": {"$ref": "#/components/responses/Unprocessable"},
                "413": {"$ref": "#/components/responses/TooLarge"}, "415": {"$ref": "#/components/responses/Unsupported"}, "503": {"$ref": "#/components/responses/Unavailable"}}}},
            "/v1/search": {"post": {"summary": "Which enrolled identities does this image look like?", "security": [{}, {"clientKey": []}],
              "parameters": [{"name": "k", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": \#(maxK)}}, {"$ref": "#/components/parameters/threshold"}, {"$ref": "#/components/parameters/gallery"}],
              "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/OneImageForm"}}, "application/json": {"schema": {"$ref": "#/components/schemas/OneImage"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}}, "image/jpeg": {"schema": {"type": "string", "format": "binary"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
              "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "nearest identities, best sample each, with an open-set decision", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchResult"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "422": {"$ref": "#/components/responses/Unprocessable"},
                "413": {"$ref": "#/components/responses/TooLarge"}, "415": {"$ref": "#/components/responses/Unsupported"}, "503": {"$ref": "#/components/responses/Unavailable"}}}},
            "/v1/embed": {"post": {"summary": "The embedding of one image", "security": [{}, {"clientKey": []}],
              "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/ImageOnlyForm"}}, "application/json": {"schema": {"$ref": "#/components/schemas/ImageOnly"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
              "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "embedding", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Embedding"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "422": {"$ref": "#/components/responses/Unprocessable"},
                "413": {"$ref": "#/components/responses/TooLarge"}, "415": {"$ref": "#/components/responses/Unsupported"}, "503": {"$ref": "#/components/responses/Unavailable"}}}},
            "/v1/identities/{id}/verify": {"post": {"summary": "1:1 against one enrolled identity (its nearest sample)", "security": [{}, {"clientKey": []}],
              "parameters": [{"$ref": "#/components/parameters/id"}, {"$ref": "#/components/parameters/threshold"}, {"$ref": "#/components/parameters/gallery"}],
              "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/IdentityImageForm"}}, "application/json": {"schema": {"$ref": "#/components/schemas/IdentityImage"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
              "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "decision", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IdentityDecision"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "422": {"$ref": "#/components/responses/Unprocessable"},
                "404": {"$ref": "#/components/responses/NotFound"}, "409": {"$ref": "#/components/responses/Conflict"}, "413": {"$ref": "#/components/responses/TooLarge"},
                "415": {"$ref": "#/components/responses/Unsupported"}, "503": {"$ref": "#/components/responses/Unavailable"}}}},
            "/v1/index/digest": {"get": {"summary": "What the in-memory index holds: sample count and a SHA-256 of its sorted gallery, identity and sample lines (admin)", "security": [{"adminKey": []}], "responses": {"500": {"$ref": "#/components/responses/Internal"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "503": {"$ref": "#/components/responses/Unavailable"},
              "200": {"description": "digest", "content": {"application/json": {"schema": {"type": "object", "required": ["model", "samples", "digest"], "properties": {"model": {"type": "string"}, "samples": {"type": "integer"}, "digest": {"type": "string"}}}}}}}}},
            "/v1/identities": {
              "post": {"summary": "Enroll an identity with one or more images (all or nothing)", "security": [{"adminKey": []}],
                "parameters": [{"$ref": "#/components/parameters/gallery"}],
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/NewIdentityForm"}}, "application/json": {"schema": {"$ref": "#/components/schemas/NewIdentity"}}}},
                "responses": {"500": {"$ref": "#/components/responses/Internal"}, "201": {"description": "enrolled", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Enrolled"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                  "409": {"$ref": "#/components/responses/Conflict"}, "413": {"$ref": "#/components/responses/TooLarge"}, "415": {"$ref": "#/components/responses/Unsupported"},
                  "422": {"$ref": "#/components/responses/Unprocessable"}, "503": {"$ref": "#/components/responses/Unavailable"}}},
              "get": {"summary": "List identities (keyset pagination)", "security": [{"adminKey": []}],
                "parameters": [{"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                  {"name": "after", "in": "query", "required": false, "schema": {"type": "string"}},
                  {"name": "prefix", "in": "query", "required": false, "description": "only identities whose id starts with this", "schema": {"type": "string", "maxLength": 128}}, {"$ref": "#/components/parameters/gallery"}],
                "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "a page", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IdentityList"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}}}
            },
            "/v1/identities/{id}": {
              "get": {"summary": "One identity with its samples and spread", "security": [{"adminKey": []}],
                "parameters": [{"$ref": "#/components/parameters/id"}, {"$ref": "#/components/parameters/gallery"}],
                "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "identity", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Identity"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"$ref": "#/components/responses/NotFound"}}},
              "delete": {"summary": "Delete an identity and its samples", "security": [{"adminKey": []}],
                "parameters": [{"$ref": "#/components/parameters/id"}, {"$ref": "#/components/parameters/gallery"}],
                "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "deleted", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Deleted"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}, "503": {"$ref": "#/components/responses/Unavailable"}}}
            },
            "/v1/identities/{id}/samples": {"post": {"summary": "Add images to an identity (all or nothing)", "security": [{"adminKey": []}],
              "parameters": [{"$ref": "#/components/parameters/id"}, {"$ref": "#/components/parameters/gallery"}],
              "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/NewSamplesForm"}}, "application/json": {"schema": {"$ref": "#/components/schemas/NewSamples"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
              "responses": {"500": {"$ref": "#/components/responses/Internal"}, "201": {"description": "added", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Enrolled"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"}, "409": {"$ref": "#/components/responses/Conflict"}, "413": {"$ref": "#/components/responses/TooLarge"},
                "415": {"$ref": "#/components/responses/Unsupported"}, "422": {"$ref": "#/components/responses/Unprocessable"}, "503": {"$ref": "#/components/responses/Unavailable"}}}},
            "/v1/identities/{id}/samples/{sample}": {"delete": {"summary": "Delete one sample", "security": [{"adminKey": []}],
              "parameters": [{"$ref": "#/components/parameters/id"}, {"name": "sample", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1, "maximum": 9223372036854775807}}, {"$ref": "#/components/parameters/gallery"}],
              "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "deleted", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Deleted"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"}, "503": {"$ref": "#/components/responses/Unavailable"}}}},
            "/v1/identities/{id}/samples/{sample}/image": {"get": {"summary": "A sample's stored image: the original bytes with their media type, or a PNG (format=png; max_side=N scales it to fit N pixels)", "security": [{"adminKey": []}],
              "parameters": [{"$ref": "#/components/parameters/id"}, {"name": "sample", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1, "maximum": 9223372036854775807}}, {"$ref": "#/components/parameters/gallery"},
                {"name": "max_side", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 16, "maximum": 1024}},
                {"name": "format", "in": "query", "required": false, "schema": {"enum": ["original", "png"]}}],
              "responses": {"500": {"$ref": "#/components/responses/Internal"}, "200": {"description": "the image", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}, "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                  "image/x-portable-graymap": {"schema": {"type": "string", "format": "binary"}}, "image/x-portable-pixmap": {"schema": {"type": "string", "format": "binary"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"}, "422": {"$ref": "#/components/responses/Unprocessable"}}}}
          }
        }
        """#
    }
}
