"""The browser UI: static pages (our own small JS and CSS, and vendored xterm.js and
highlight.js under static/vendor), served by the API's process. Nothing is fetched from
elsewhere at run time."""
