// SPDX-License-Identifier: MIT
@_exported import DoppelHTTP

/// The tests' name for DoppelHTTP's blocking client.
public typealias RawClient = HTTPClient
