// SPDX-License-Identifier: MIT

/// The web console served at `/`: one HTML page, one style sheet and one plain script
/// (`ConsoleAssets+Script.swift`), compiled into the binary so the console works offline with
/// no build step and no CDN. The page holds no inline script or style, so the
/// Content-Security-Policy can forbid both.
enum ConsoleAssets {
    static let page = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Doppel console</title>
    <link rel="icon" href="/favicon.svg" type="image/svg+xml">
    <link rel="stylesheet" href="/console.css">
    <script src="/console.js" defer></script>
    </head>
    <body>
    <header>
      <h1>Doppel</h1>
      <nav id="tabs">
        <button type="button" data-view="verify" class="active">Verify</button>
        <button type="button" data-view="search">Search</button>
        <button type="button" data-view="gallery">Gallery</button>
        <button type="button" data-view="model">Model</button>
      </nav>
      <form id="key-form" autocomplete="off">
        <label>Gallery <input id="gallery-name" value="default" size="10" spellcheck="false"></label>
        <input id="key" type="password" placeholder="API key" size="22" aria-label="API key">
        <button type="submit">Use key</button>
        <button type="button" id="forget-key">Forget</button>
        <span id="key-state"></span>
      </form>
    </header>
    <main>
      <section id="view-verify" class="view">
        <p class="lead">Are these two images of the same identity?</p>
        <div class="pair">
          <label class="drop" id="verify-a"><input type="file" accept="image/*"><img alt=""><span>Drop an image here or click to choose</span></label>
          <label class="drop" id="verify-b"><input type="file" accept="image/*"><img alt=""><span>Drop an image here or click to choose</span></label>
        </div>
        <button type="button" id="verify-run" class="primary" disabled>Verify</button>
        <div id="verify-result" class="result" hidden></div>
      </section>

      <section id="view-search" class="view" hidden>
        <p class="lead">Who in the gallery does this image look like?</p>
        <div class="row">
          <label class="drop" id="search-image"><input type="file" accept="image/*"><img alt=""><span>Drop an image here or click to choose</span></label>
          <div class="controls">
            <label>Show the nearest <select id="search-k"><option>1</option><option>3</option><option selected>5</option><option>10</option></select> identities</label>
            <button type="button" id="search-run" class="primary" disabled>Search</button>
          </div>
        </div>
        <div id="search-result" class="result" hidden></div>
      </section>

      <section id="view-gallery" class="view" hidden>
        <p id="gallery-locked" class="notice">The gallery needs the admin key: type it above and press “Use key”. It is kept in this tab only.</p>
        <div id="gallery-open" hidden>
          <div class="toolbar">
            <input id="gallery-prefix" type="search" placeholder="Find identities by id" spellcheck="false">
            <button type="button" id="gallery-new">Enroll a new identity</button>
          </div>
          <form id="enroll-form" class="panel" hidden>
            <h2>Enroll a new identity</h2>
            <label>Id <input id="enroll-id" required maxlength="128" spellcheck="false"></label>
            <label>Name <input id="enroll-name" maxlength="256"></label>
            <label>Images <input id="enroll-images" type="file" accept="image/*" multiple required></label>
            <div class="buttons"><button type="submit" class="primary">Enroll</button><button type="button" id="enroll-cancel">Cancel</button></div>
            <div id="enroll-preview" class="previews"></div>
            <div id="enroll-result"></div>
          </form>
          <div id="identity" class="panel" hidden></div>
          <div id="gallery-grid" class="grid"></div>
          <div class="pager"><button type="button" id="gallery-prev">Previous</button><span id="gallery-page"></span><button type="button" id="gallery-next">Next</button></div>
        </div>
      </section>

      <section id="view-model" class="view" hidden>
        <div id="model-info"></div>
      </section>
    </main>
    <div id="status" role="status" aria-live="polite"></div>
    </body>
    </html>
    """#

    /// Two overlapping circles: a likeness.
    static let icon = #"""
    <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="12" cy="16" r="9" fill="#2456d6"/><circle cx="20" cy="16" r="9" fill="#2456d6" fill-opacity=".55"/></svg>
    """#

    static let style = #"""
    :root { --ink: #1d2430; --muted: #5d6775; --line: #d8dde4; --bg: #f6f7f9; --accent: #2456d6; --good: #17803d; --bad: #b3261e; --warn: #a15c00; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
    header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 24px; padding: 10px 20px; background: #fff; border-bottom: 1px solid var(--line); }
    h1 { font-size: 20px; margin: 0; letter-spacing: .02em; }
    h2 { font-size: 17px; margin: 0 0 10px; }
    * + h2 { margin-top: 22px; }
    nav button { border: 0; background: none; padding: 6px 12px; font: inherit; color: var(--muted); border-radius: 6px; cursor: pointer; }
    nav button.active { color: var(--ink); background: var(--bg); font-weight: 600; }
    #key-form { margin-left: auto; display: flex; align-items: center; gap: 6px; flex-wrap: wrap; }
    #key-state { color: var(--muted); font-size: 13px; }
    input, select, button { font: inherit; }
    input, select { padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
    button { padding: 6px 12px; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }
    button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
    button:disabled { opacity: .5; cursor: default; }
    button.danger { color: var(--bad); border-color: var(--bad); }
    main { max-width: 1100px; margin: 0 auto; padding: 20px; }
    .lead { font-size: 17px; margin: 0 0 16px; }
    .pair, .row { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; margin-bottom: 16px; }
    .controls { display: flex; flex-direction: column; gap: 12px; }
    .drop { width: 240px; height: 240px; border: 2px dashed var(--line); border-radius: 10px; background: #fff; display: flex; align-items: center; justify-content: center; text-align: center; cursor: pointer; position: relative; overflow: hidden; color: var(--muted); padding: 12px; }
    .drop.over { border-color: var(--accent); }
    .drop input { position: absolute; width: 1px; height: 1px; opacity: 0; }
    .drop img { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; background: #fff; image-rendering: pixelated; }
    .drop img:not([src]) { display: none; }
    .result, .panel { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px; margin: 16px 0; }
    .verdict { font-size: 20px; font-weight: 600; margin-bottom: 8px; }
    .verdict.yes { color: var(--good); } .verdict.no { color: var(--bad); } .verdict.maybe { color: var(--warn); }
    .bar { position: relative; height: 14px; background: linear-gradient(90deg, #d7f0de, #d7f0de var(--t), #f6d9d7 var(--t)); border-radius: 7px; margin: 18px 0 26px; }
    .bar .mark { position: absolute; top: -6px; width: 3px; height: 26px; background: var(--ink); }
    .bar .mark.threshold { background: var(--muted); }
    .bar .label { position: absolute; top: 22px; transform: translateX(-50%); font-size: 12px; color: var(--muted); white-space: nowrap; }
    .matches { list-style: none; padding: 0; margin: 12px 0 0; display: grid; gap: 10px; }
    .matches li { display: flex; gap: 12px; align-items: center; padding: 8px; border: 1px solid var(--line); border-radius: 8px; }
    .matches li.match { border-color: var(--good); }
    .faces { position: relative; display: inline-block; max-width: 480px; line-height: 0; }
    .faces img { display: block; max-width: 100%; max-height: 360px; }
    .facebox { position: absolute; padding: 0; border: 2px solid var(--accent); border-radius: 2px; background: transparent; color: #fff; font-size: 11px; line-height: 1; text-align: left; vertical-align: top; text-shadow: 0 0 2px #000; }
    .facebox.chosen { border-color: var(--good); box-shadow: 0 0 0 2px rgba(255, 255, 255, .8); }
    .facecards { list-style: none; padding: 0; margin: 0; display: grid; gap: 8px; align-content: start; min-width: 200px; }
    .facecard { display: flex; gap: 10px; padding: 8px; border: 1px solid var(--line); border-radius: 8px; cursor: pointer; }
    .facecard.chosen { border-color: var(--accent); background: var(--bg); }
    .facecard.match span { color: var(--good); } .facecard.unknown span { color: var(--muted); } .facecard.ambiguous span { color: var(--warn); }
    .previews { display: flex; flex-wrap: wrap; gap: 12px; }
    .previews figure { margin: 8px 0; } .previews figure.refused figcaption { color: var(--bad); }
    .previews .faces { max-width: 220px; } .previews .faces img { max-height: 200px; }
    .thumb { border: 0; width: 64px; height: 64px; object-fit: contain; background: var(--bg); border-radius: 6px; image-rendering: pixelated; flex: none; }
    .muted { color: var(--muted); }
    .notice { background: #fff8e6; border: 1px solid #f0d9a0; padding: 10px 14px; border-radius: 8px; }
    .error { color: var(--bad); }
    .toolbar { display: flex; gap: 10px; margin-bottom: 12px; }
    .toolbar input { flex: 1; }
    .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 12px; }
    .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 8px; text-align: center; cursor: pointer; }
    .card:hover { border-color: var(--accent); }
    .card img { width: 100%; height: 110px; object-fit: contain; background: var(--bg); border-radius: 6px; image-rendering: pixelated; }
    .card .name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .pager { display: flex; gap: 12px; align-items: center; justify-content: center; margin: 16px 0; }
    .samples { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
    .sample { display: flex; flex-direction: column; gap: 4px; align-items: center; }
    .sample img { width: 96px; height: 96px; object-fit: contain; background: var(--bg); border-radius: 6px; image-rendering: pixelated; }
    .buttons { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 12px; }
    form.panel label { display: block; margin-bottom: 10px; }
    form.panel label input { display: block; margin-top: 4px; width: 100%; max-width: 420px; }
    dl { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; }
    dt { color: var(--muted); } dd { margin: 0; word-break: break-word; }
    pre { background: var(--bg); padding: 8px; border-radius: 6px; overflow: auto; margin: 0; }
    svg.plot { width: 100%; max-width: 640px; height: auto; background: #fff; }
    svg.plot .axis { stroke: var(--muted); stroke-width: 1; }
    svg.plot .curve { fill: none; stroke: var(--accent); stroke-width: 2; }
    svg.plot .served { stroke: var(--bad); stroke-dasharray: 4 3; }
    svg.plot text { font-size: 11px; fill: var(--muted); }
    #status { position: fixed; bottom: 16px; left: 50%; transform: translateX(-50%); background: var(--ink); color: #fff; padding: 8px 14px; border-radius: 8px; opacity: 0; transition: opacity .2s; pointer-events: none; }
    #status.shown { opacity: .92; }
    """#
}
