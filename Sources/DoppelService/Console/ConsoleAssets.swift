// SPDX-License-Identifier: MIT

/// The web console served at `/`: one HTML page, one style sheet and one plain script
/// (`Resources/console.html`, `console.css`, `console.js`, `favicon.svg`), compiled into the
/// binary so the console works offline with no build step and no CDN. The page holds no
/// inline script or style, so the Content-Security-Policy can forbid both.
enum ConsoleAssets {
    static let page = PackageResources.console_html
    static let script = PackageResources.console_js
    static let style = PackageResources.console_css
    static let icon = PackageResources.favicon_svg
}
