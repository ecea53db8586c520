// Package console serves the web console: HTML pages and their scripts
// and style sheet, embedded in the binary, under /console/ (and / redirects
// there). The pages speak only the public REST API (/api/v1) with fetch(),
// so everything the console does a script can do too.
//
// # Pages
//
// /console/login is the login form (POST /api/v1/login). Every other page
// (/console/ the dashboard, /console/jobs, /console/sessions,
// /console/points, /console/infrastructure, /console/users,
// /console/notifications) is one shell
// (static/app.html) with the navigation, the signed-in user, a "Change
// password" form (PUT /api/v1/me/password) and a logout button; the page's script fills its main element from the API. A page
// whose GET /api/v1/me answers 401 goes to the login page.
//
// # Assets and caching
//
// Pages are html/template files rendered once at New; they reference
// assets as /console/assets/NAME?v=HASH, HASH the first 16 hex digits of
// the asset's SHA-256. An asset requested with its current hash is served
// with a one-year immutable Cache-Control; without (or with an old hash)
// with no-cache. Pages are always no-cache, so a new binary's pages point
// at its new assets at once.
//
// # Security
//
// Every answer carries a strict Content-Security-Policy (default-src
// 'self', no inline script or style, frame-ancestors 'none', form-action
// 'self', base-uri 'none'), X-Frame-Options DENY, X-Content-Type-Options
// nosniff and Referrer-Policy no-referrer. Scripts build the page with
// DOM calls and textContent only (never innerHTML), so API data is always
// text. There are no third-party resources. Authentication, the session
// cookie and CSRF protection are the API's (internal/server/api,
// sessionauth.go): scripts read the CSRF token from POST /api/v1/login
// or GET /api/v1/me and send it as X-CSRF-Token on every unsafe request.
package console
