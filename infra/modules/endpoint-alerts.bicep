// Alerts on one Azure ML managed online endpoint, wired to aml-rollout's action group. Deploy it
// into the workspace's resource group, once per endpoint (infra/alerts.bicep does, for every
// endpoint in AML_ROLLOUT_ALERT_ENDPOINTS; README "Deploy to Azure" shows the direct call).
//
// Metric rules, evaluated every minute over the last windowSize, split by the `deployment`
// dimension (one time series per deployment, all deployments included): whichever deployment is
// the new one during a rollout, its alert names it, and the app rolls back only when the alert
// names the rollout's new deployment (an alert about another deployment is recorded).
//  - 5xx: RequestsPerMinute with statusCodeClass 5xx, average per minute above max5xxPerMinute
//  - 424: RequestsPerMinute with statusCode 424 ("the model container failed", a 4xx), above max424PerMinute
//  - p99: RequestLatency_P99 (milliseconds) above maxP99LatencyMs
// Metric names and dimensions: Microsoft's "Supported metrics for
// Microsoft.MachineLearningServices/workspaces/onlineEndpoints" (MicrosoftDocs/azure-monitor-docs).
//
// Optional (trafficLogWorkspaceId set): a diagnostic setting sending AmlOnlineEndpointTrafficLog to
// that Log Analytics workspace, and a log search alert counting 5xx and 424 responses there, split
// by EndpointName and DeploymentName (set AML_ROLLOUT_LOG_ANALYTICS_RESOURCE_ID so the app routes it).
//
// API versions: Azure/bicep-types-az generated/monitor_1/microsoft.insights/2018-03-01/types.md
// (metricAlerts), 2023-12-01 (scheduledQueryRules), 2021-05-01-preview (diagnosticSettings),
// generated/machinelearningservices/microsoft.machinelearningservices/2024-10-01/types.md.

param workspaceName string
param endpointName string
@description('Resource id of the action group that calls POST /api/alerts.')
param actionGroupId string
param location string = resourceGroup().location
param tags object = {}
@description('5xx responses per minute (per deployment) above which the 5xx rule fires.')
param max5xxPerMinute int = 5
@description('424 responses per minute (per deployment) above which the 424 rule fires.')
param max424PerMinute int = 5
@description('p99 latency in milliseconds (per deployment) above which the latency rule fires.')
param maxP99LatencyMs int = 1000
@allowed(['PT1M', 'PT5M', 'PT15M'])
param windowSize string = 'PT5M'
@description('Log Analytics workspace resource id for AmlOnlineEndpointTrafficLog; empty: no diagnostic setting, no log alert.')
param trafficLogWorkspaceId string = ''
@description('5xx + 424 responses per evaluation (per deployment) above which the log search alert fires.')
param maxLoggedErrors int = 25

var metricNamespace = 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints'
var everyDeployment = {
  name: 'deployment'
  operator: 'Include'
  values: [
    '*'
  ]
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource endpoint 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-10-01' existing = {
  parent: workspace
  name: endpointName
}

resource errors5xx 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${endpointName}-5xx'
  location: 'global'
  tags: tags
  properties: {
    description: 'aml-rollout: 5xx responses of a deployment of ${endpointName}'
    severity: 1
    enabled: true
    scopes: [
      endpoint.id
    ]
    evaluationFrequency: 'PT1M'
    windowSize: windowSize
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'deployment5xx'
          metricNamespace: metricNamespace
          metricName: 'RequestsPerMinute'
          dimensions: [
            everyDeployment
            {
              name: 'statusCodeClass'
              operator: 'Include'
              values: [
                '5xx'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: max5xxPerMinute
          timeAggregation: 'Average'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

resource errors424 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${endpointName}-424'
  location: 'global'
  tags: tags
  properties: {
    description: 'aml-rollout: 424 responses (model container failed) of a deployment of ${endpointName}'
    severity: 1
    enabled: true
    scopes: [
      endpoint.id
    ]
    evaluationFrequency: 'PT1M'
    windowSize: windowSize
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'deployment424'
          metricNamespace: metricNamespace
          metricName: 'RequestsPerMinute'
          dimensions: [
            everyDeployment
            {
              name: 'statusCode'
              operator: 'Include'
              values: [
                '424'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: max424PerMinute
          timeAggregation: 'Average'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

resource latencyP99 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${endpointName}-p99'
  location: 'global'
  tags: tags
  properties: {
    description: 'aml-rollout: p99 latency of a deployment of ${endpointName}'
    severity: 2
    enabled: true
    scopes: [
      endpoint.id
    ]
    evaluationFrequency: 'PT1M'
    windowSize: windowSize
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'deploymentP99'
          metricNamespace: metricNamespace
          metricName: 'RequestLatency_P99'
          dimensions: [
            everyDeployment
          ]
          operator: 'GreaterThan'
          threshold: maxP99LatencyMs
          timeAggregation: 'Average'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

resource trafficLog 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(trafficLogWorkspaceId)) {
  name: 'aml-rollout-traffic-log'
  scope: endpoint
  properties: {
    workspaceId: trafficLogWorkspaceId
    logs: [
      {
        category: 'AmlOnlineEndpointTrafficLog'
        enabled: true
      }
    ]
  }
}

resource loggedErrors 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (!empty(trafficLogWorkspaceId)) {
  name: '${endpointName}-errors-log'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    description: 'aml-rollout: 5xx and 424 responses of a deployment of ${endpointName}, from AmlOnlineEndpointTrafficLog'
    severity: 1
    enabled: true
    scopes: [
      trafficLogWorkspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'AmlOnlineEndpointTrafficLog | where AzureMLWorkspaceName =~ "${workspaceName}" and EndpointName =~ "${endpointName}" | extend Code = toint(ResponseCode) | where (Code >= 500 and Code <= 599) or Code == 424'
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'EndpointName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'DeploymentName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: maxLoggedErrors
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    // The table exists only once the diagnostic setting has sent a first row.
    skipQueryValidation: true
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
  dependsOn: [
    trafficLog
  ]
}
