// The app's own storage account: the Functions host, the Durable task hub (Azure Storage backend:
// queues, tables, blobs) and the Flex Consumption deployment container. Reached only with the
// app's managed identity: shared-key (account key and SAS) access is off.
// API versions: Azure/bicep-types-az generated/storage/microsoft.storage/2023-05-01/types.md
// (generated from Azure/azure-rest-api-specs specification/storage, stable 2023-05-01).

@description('Storage account name (3-24 lower-case letters and digits).')
param name string
param location string
param tags object = {}
@description('Blob container that holds the deployment package (Flex Consumption deploys from it).')
param deploymentContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_59: public endpoint on, for the same reason as CKV_AZURE_35; anonymous and key access are both off.
  // checkov:skip=CKV_AZURE_206: LRS: the task hub holds only running rollouts' state, and a lost rollout is started again; GRS doubles the cost.
  // checkov:skip=CKV_AZURE_35: Flex Consumption without a virtual network reaches storage over its public endpoint; requests still need an Entra ID token (no keys, no SAS).
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
