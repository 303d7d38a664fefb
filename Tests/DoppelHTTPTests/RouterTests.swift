// SPDX-License-Identifier: MIT
import Foundation
import Testing
@testable import DoppelHTTP

@Suite struct RouterTests {
    struct Echo: HTTPHandler {
        func handle(_ request: HTTPRequest, parameters: [String: String]) throws -> HTTPResponse {
            .json(200, "{\"id\":\"\(parameters["id"] ?? "")\",\"method\":\"\(request.method)\"}")
        }
    }

    struct Teapot: Error, HTTPResponseError { var response: HTTPResponse { .json(409, "{}") } }
    struct Fails: HTTPHandler {
        let error: any Error & Sendable
        func handle(_ request: HTTPRequest, parameters: [String: String]) throws -> HTTPResponse { throw error }
    }
    struct Plain: Error {}

    static func request(_ method: String, _ path: String) -> HTTPRequest {
        HTTPRequest(method: method, path: path, query: [], version: .http11, headers: HTTPHeaders([("Host", "x")]), body: [])
    }

    @Test func routesWithParametersMethodsAndErrors() {
        var router = Router()
        router.add("GET", "/v1/identities/{id}", Echo())
        router.add("DELETE", "/v1/identities/{id}", Echo())
        router.add("POST", "/v1/conflict", Fails(error: Teapot()))
        router.add("POST", "/v1/broken", Fails(error: Plain()))
        let found = router.respond(to: Self.request("GET", "/v1/identities/alice"))
        #expect(found.status == 200 && String(decoding: found.body, as: UTF8.self) == #"{"id":"alice","method":"GET"}"#)
        let wrongMethod = router.respond(to: Self.request("PUT", "/v1/identities/alice"))
        #expect(wrongMethod.status == 405 && wrongMethod.headers["allow"] == "GET, DELETE")
        #expect(router.respond(to: Self.request("GET", "/v1/identities/")).status == 404)
        #expect(router.respond(to: Self.request("GET", "/v1/identities/a/b")).status == 404)
        #expect(router.respond(to: Self.request("POST", "/v1/conflict")).status == 409)
        #expect(router.respond(to: Self.request("POST", "/v1/broken")).status == 500)
    }

    @Test func responsesCarryLengthDateAndType() {
        let bytes = HTTPResponse.json(201, "{}").serialized(date: Date(timeIntervalSince1970: 784_111_777), closing: true)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        let raw = String(decoding: HTTPResponse(status: 200, body: [1]).serialized(date: Date(timeIntervalSince1970: 0)), as: UTF8.self)
        #expect(raw.contains("Content-Type: application/octet-stream\r\n") && raw.contains("Date: Thu, 01 Jan 1970 00:00:00 GMT"))
    }
}
