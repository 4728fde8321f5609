# Prometheus and promtool (scrape test, `promtool check metrics`) and mtail (benchmark peer).
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v mtail >/dev/null || need+=(mtail)
