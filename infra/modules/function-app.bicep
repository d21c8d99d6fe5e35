// The Function App on the Flex Consumption plan (FC1), Python 3.11, running as the user-assigned
// identity. On Flex the runtime lives in functionAppConfig.runtime: no FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, linuxFxVersion or WEBSITE_RUN_FROM_PACKAGE settings.
// API versions: Azure/bicep-types-az generated/web/microsoft.web/2024-04-01/types.md
// (FunctionAppConfig, FunctionsAlwaysReadyConfig; from Azure/azure-rest-api-specs specification/web).

param name string
param planName string
param location string
param tags object = {}
@description('Resource id of the user-assigned identity the app runs as.')
param identityId string
@description('Client id of that identity (AZURE_CLIENT_ID, AzureWebJobsStorage__clientId).')
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param appInsightsName string
@description('Settings the app itself reads (settings.py), merged over the host settings.')
param appSettings object
@description('Durable backend settings (Durable Task Scheduler connection and host.json overrides), or {}.')
param durableSettings object = {}
@description('Always-ready instances of the "durable" group: 1 keeps an instance polling the task hub, so an alert reaches its rollout without a cold start.')
@minValue(0)
param durableAlwaysReady int = 1
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Host settings: identity-based AzureWebJobsStorage (Durable needs the queue and table service
// URIs too; a user-assigned identity needs credential + clientId, never managedIdentityResourceId)
// and Application Insights through Entra ID.
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // DefaultAzureCredential picks the user-assigned identity by this client id.
  AZURE_CLIENT_ID: identityClientId
}

var allSettings = union(hostSettings, durableSettings, appSettings)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption needs always-ready instances in every zone; a zone outage pauses a rollout (its state is in storage), it does not lose it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales on demand; the "durable" always-ready instance (durableAlwaysReady) is the standing capacity.
  // checkov:skip=CKV_AZURE_222: public network access stays on: Azure Monitor action groups call POST /api/alerts from the internet.
  // checkov:skip=CKV_AZURE_17: no client certificates: Azure Monitor's webhook cannot present one; every route needs a function key or an Entra ID token instead.
  // checkov:skip=CKV_AZURE_213: no health-check route: every route needs a key or a token, and Flex Consumption replaces unhealthy instances itself.
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(allSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: (durableAlwaysReady > 0) ? [
          {
            name: 'durable'
            instanceCount: durableAlwaysReady
          }
        ] : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output name string = app.name
output id string = app.id
output defaultHostName string = app.properties.defaultHostName
