// SPDX-License-Identifier: MIT

/// Handles one request; errors that know their status conform to `HTTPResponseError`.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest, parameters: [String: String]) throws -> HTTPResponse
}

/// An error that knows the response it should become; anything else is a 500, in one place.
public protocol HTTPResponseError: Error {
    var response: HTTPResponse { get }
}

/// Turns a request into a response; the server calls it from its worker threads.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest) -> HTTPResponse
    /// Whether answering takes next to no work (health checks, a cached document): such
    /// requests run on a lane of their own, so a probe never queues behind model work.
    func isLightweight(_ request: HTTPRequest) -> Bool
}

extension HTTPResponder {
    public func isLightweight(_ request: HTTPRequest) -> Bool { false }
}

/// Routes by method and path pattern (`/v1/identities/{id}`): 404 when no pattern matches,
/// 405 with `Allow` when the path matches under other methods.
public struct Router: HTTPResponder {
    struct Route: Sendable {
        let method: String
        let pattern: String
        let segments: [Substring]
        let handler: any HTTPHandler
    }

    private var routes: [Route] = []

    public init() {}

    public mutating func add(_ method: String, _ pattern: String, _ handler: any HTTPHandler) {
        routes.append(Route(method: method, pattern: pattern, segments: pattern.split(separator: "/", omittingEmptySubsequences: false), handler: handler))
    }

    /// The matching route's parameters, or nil.
    static func match(_ segments: [Substring], _ path: [Substring]) -> [String: String]? {
        guard segments.count == path.count else { return nil }
        var parameters = [String: String]()
        for (pattern, part) in zip(segments, path) {
            if pattern.hasPrefix("{") && pattern.hasSuffix("}") {
                guard !part.isEmpty else { return nil }
                parameters[String(pattern.dropFirst().dropLast())] = String(part)
            } else if pattern != part {
                return nil
            }
        }
        return parameters
    }

    public func respond(to request: HTTPRequest) -> HTTPResponse { route(request).response }

    /// The response and the pattern of the route that made it (nil for 404 and 405), so
    /// callers can label metrics by route without a second match.
    public func route(_ request: HTTPRequest) -> (response: HTTPResponse, pattern: String?) {
        let path = request.path.split(separator: "/", omittingEmptySubsequences: false)
        var allowed = [String]()
        for route in routes {
            guard let parameters = Self.match(route.segments, path) else { continue }
            guard route.method == request.method else {
                allowed.append(route.method)
                continue
            }
            do {
                return (try route.handler.handle(request, parameters: parameters), route.pattern)
            } catch let error as HTTPResponseError {
                return (error.response, route.pattern)
            } catch {
                return (.json(500, #"{"error":{"code":"internal","message":"internal error"}}"#), route.pattern)
            }
        }
        if !allowed.isEmpty {
            var response = HTTPResponse.json(405, #"{"error":{"code":"method_not_allowed","message":"use \#(allowed.joined(separator: ", "))"}}"#)
            response.headers.add("Allow", allowed.joined(separator: ", "))
            return (response, nil)
        }
        return (.json(404, #"{"error":{"code":"not_found","message":"no such route"}}"#), nil)
    }
}
