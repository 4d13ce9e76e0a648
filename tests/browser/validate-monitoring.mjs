// Validates the chart's ServiceMonitor and PrometheusRule (JSON objects on stdin, one array)
// against prometheus-operator's own schemas (@kubernetes-models/prometheus-operator): the test
// apiserver has no monitoring.coreos.com CRDs to do it. Prints one line per object; exit 1 on any
// invalid one.
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

const kinds = { ServiceMonitor, PrometheusRule };
let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = false;
for (const object of JSON.parse(input)) {
  const Model = kinds[object.kind];
  if (!Model) continue;
  try {
    new Model(object).validate();
    console.log(`valid ${object.kind} ${object.metadata.name}`);
  } catch (e) {
    failed = true;
    console.log(`invalid ${object.kind} ${object.metadata.name}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
