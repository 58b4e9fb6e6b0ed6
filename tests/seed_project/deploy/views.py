from deploy.tasks import add

def post(request):
    result = add.delay(2, 3)
    return result  # not in the article: the test reads the result it made
