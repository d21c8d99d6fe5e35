// Log Analytics workspace + workspace-based Application Insights with local (key) authentication
// off: telemetry is accepted only from Entra ID identities holding Monitoring Metrics Publisher
// (the app's identity, see app-rbac.bicep; APPLICATIONINSIGHTS_AUTHENTICATION_STRING in function-app.bicep).
// API versions: Azure/bicep-types-az generated/operationalinsights/microsoft.operationalinsights/2023-09-01/types.md
// and generated/applicationinsights/microsoft.insights/2020-02-02/types.md (from Azure/azure-rest-api-specs).

param logAnalyticsName string
param appInsightsName string
param location string
param tags object = {}
@description('Days Log Analytics keeps data (30 is included in the ingestion price).')
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output logAnalyticsId string = logAnalytics.id
output logAnalyticsName string = logAnalytics.name
output logAnalyticsCustomerId string = logAnalytics.properties.customerId
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
