// Where the syncd server is. Same origin by default; a CRM hosting this page elsewhere sets
// <meta name="syncd-url" content="https://syncd.example.com"> (and FRONTEND_URL on syncd).
const meta = document.querySelector('meta[name="syncd-url"]')
export const httpBase = (meta && meta.content) || location.origin
export const wsBase = httpBase.replace(/^http/, 'ws')
