/** The frame of every page: head, header with the viewer's sites and sign-out, main. */
import { html, type Html } from './html';

export interface LayoutInput {
  title: string;
  /** Who is looking: shown in the header; a shared link shows no account controls. */
  viewer: { kind: 'account' | 'share' | 'api'; email?: string; readOnly: boolean } | null;
  body: Html;
  /** Extra scripts after the body (the chart library on a site's page). */
  scripts?: readonly string[];
}

export const ASSET_PREFIX = '/assets';

export function layout(input: LayoutInput): Html {
  const account = input.viewer?.kind === 'account';
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${input.title} · sessionizer</title>
<link rel="icon" href="${ASSET_PREFIX}/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${ASSET_PREFIX}/uplot.min.css">
<link rel="stylesheet" href="${ASSET_PREFIX}/dashboard.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="${account ? '/' : '#main'}"><span class="logo" aria-hidden="true"></span>sessionizer</a>
  ${account
    ? html`<nav class="account" aria-label="Account"><a href="/">Sites</a><span class="who">${input.viewer?.email ?? ''}</span>
<form method="post" action="/logout"><button type="submit" class="link">Log out</button></form></nav>`
    : input.viewer?.kind === 'share' ? html`<span class="badge">Shared view · read-only</span>` : ''}
</header>
<main id="main" tabindex="-1">
${input.body}
</main>
${(input.scripts ?? []).map((src) => html`<script src="${src}" defer></script>`)}
</body>
</html>`;
}
