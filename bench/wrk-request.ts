/**
 * The request every wrk-driven row sends: a dozen browser headers, a ~1 kB Cookie header with
 * the session cookie among others, a different session per request (one per line of
 * `cookieFile`). Shared by bench/run.ts and bench/cpu-per-request.ts, so both load the same way.
 */
export function wrkRequestLua(cookieFile: string): string {
  const others = Array.from({ length: 14 }, (_, i) => `_ga${i}=GA1.2.${'1234567890'.repeat(4)}`).join('; ');
  return `
local cookies = {}
for line in io.lines("${cookieFile}") do cookies[#cookies + 1] = line end
local n = #cookies
local i = 0
local headers = {
  ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  ["Accept-Encoding"] = "gzip, deflate, br",
  ["Accept-Language"] = "en-GB,en;q=0.9",
  ["Cache-Control"] = "max-age=0",
  ["Sec-Fetch-Dest"] = "document",
  ["Sec-Fetch-Mode"] = "navigate",
  ["Sec-Fetch-Site"] = "same-origin",
  ["Upgrade-Insecure-Requests"] = "1",
  ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
  ["X-Forwarded-For"] = "203.0.113.7",
  ["Referer"] = "https://app.example.com/home",
}
request = function()
  i = (i % n) + 1
  headers["Cookie"] = "theme=dark; ${others}; sessiongate=" .. cookies[i] .. "; lang=en"
  return wrk.format("GET", "/app/page?id=" .. i, headers)
end
`;
}
