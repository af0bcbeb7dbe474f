-- wrk script: the ceiling's POST /echo with a body the size of a validate request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"key":"key/eyJsaWNlbnNlX2lkIjoiMDE5Mzc4YjAtMDAwMC03MDAwLTgwMDAtMDAwMDAwMDAwMDAwIn0.c2lnbmF0dXJl"}'
