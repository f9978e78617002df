// REST calls with the access token; a 401 refreshes the pair once and retries.
import * as auth from './auth.js'
import { httpBase } from './config.js'

export async function api (path, { method = 'GET', body, query } = {}) {
  let url = `${httpBase}${path}`
  if (query) {
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(query)) if (v !== '' && v !== undefined && v !== null) params.set(k, v)
    if ([...params].length) url += `?${params}`
  }
  const send = () => fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${auth.accessToken()}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {})
    },
    body: body !== undefined ? JSON.stringify(body) : undefined
  })
  let response = await send()
  if (response.status === 401) {
    await auth.refresh()
    response = await send()
  }
  if (response.status === 204) return null
  const data = await response.json().catch(() => ({}))
  if (!response.ok) {
    const error = new Error((data.error && data.error.message) || `HTTP ${response.status}`)
    error.status = response.status
    throw error
  }
  return data
}

export const notesPath = '/api/collaborative-notes'
