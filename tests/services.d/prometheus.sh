# Prometheus and promtool (scrape test, `promtool check metrics`), Alertmanager (its webhook opens
# incidents; started per test, never as a service) and mtail (benchmark peer).
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v mtail >/dev/null || need+=(mtail)
